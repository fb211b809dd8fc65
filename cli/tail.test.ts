import { describe, expect, it } from "vitest";
import { brokerModes } from "../test/support/modes.js";
import { relayFixture, startRelay } from "../test/support/relay-harness.js";
import { publish } from "../test/support/sse-client.js";
import { CliProcess } from "./testing/cli-process.js";

const CONNECTED = /tail: connected to /;
const LAST_ID = /tail: last id (\S+) \(resume with --last-event-id \S+\)/;

describe.each(brokerModes())("edge-fanout tail ($name)", (mode) => {
  const { start } = relayFixture();

  it("prints messages of channels and patterns, and resumes with --last-event-id from the id it printed on Ctrl-C", async () => {
    const r = await start(mode.env());
    const tail = new CliProcess(["tail", "orders", "user:*:inbox", "--url", r.base]);
    await tail.waitFor("stderr", CONNECTED);
    await publish(r.base, { channel: "orders", type: "order.created", data: { id: 1 } });
    await publish(r.base, { channel: "user:7:inbox", data: "hi" });
    await publish(r.base, { channel: "elsewhere", data: "not subscribed" });
    await publish(r.base, { channel: "orders", data: "last" });
    await tail.waitFor("stdout", /orders message last/);

    const lines = tail.lines();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z orders order\.created \{"id":1\}$/);
    expect(lines[1]).toMatch(/^\S+ user:7:inbox \(user:\*:inbox\) message hi$/);
    expect(lines[2]).toMatch(/^\S+ orders message last$/);

    expect(await tail.kill("SIGINT")).toBe(0);
    const lastId = tail.stderr.match(LAST_ID)![1];

    // Missed while no tail ran: the resumed tail prints exactly these, in order, then live ones.
    await publish(r.base, { channel: "orders", data: "missed 1" });
    await publish(r.base, { channel: "user:9:inbox", data: "missed 2" });
    const resumed = new CliProcess(["tail", "orders", "user:*:inbox", "--url", r.base, "--last-event-id", lastId]);
    await resumed.waitFor("stderr", CONNECTED);
    await publish(r.base, { channel: "orders", data: "live" });
    await resumed.waitFor("stdout", /orders message live/);
    expect(resumed.lines().map((l) => l.replace(/^\S+ /, ""))).toEqual(["orders message missed 1", "user:9:inbox (user:*:inbox) message missed 2", "orders message live"]);
    expect(await resumed.kill("SIGTERM")).toBe(0);
    expect(resumed.stderr).toMatch(LAST_ID);
  });

  it("--json prints envelopes; --channel takes a name with * as a channel; --pattern forces a pattern", async () => {
    const r = await start(mode.env());
    const tail = new CliProcess(["tail", "--channel", "deals*", "--pattern", "exact", "--json", "--url", r.base]);
    await tail.waitFor("stderr", CONNECTED);
    await publish(r.base, { channel: "dealsX", data: 0 }); // would match a pattern deals*, not the channel
    await publish(r.base, { channel: "deals*", type: "t", data: { a: [1] } });
    await publish(r.base, { channel: "exact", data: 2 });
    await tail.waitFor("stdout", /"channel":"exact"/);
    const envelopes = tail.lines().map((l) => JSON.parse(l));
    expect(envelopes).toMatchObject([
      { channel: "deals*", type: "t", data: { a: [1] } },
      { channel: "exact", pattern: "exact", data: 2 },
    ]);
    expect(envelopes[0].pattern).toBeUndefined();
  });
});

describe("edge-fanout tail across a relay restart (redis broker)", () => {
  const redis = brokerModes().find((m) => m.name === "redis broker")!;

  it("reconnects by itself and prints what was published while its relay was down, once each", async () => {
    const env = redis.env();
    const first = await startRelay(env);
    const other = await startRelay(env);
    const tail = new CliProcess(["tail", "jobs", "--url", first.base]);
    try {
      await tail.waitFor("stderr", CONNECTED);
      await publish(first.base, { channel: "jobs", data: "before" });
      await tail.waitFor("stdout", /jobs message before/);

      await first.stop();
      await tail.waitFor("stderr", /disconnected, reconnecting/);
      await publish(other.base, { channel: "jobs", data: "while down" });
      // The same address again, as a restarted relay (or a pod behind one Service) has.
      const again = await startRelay({ ...env, PORT: String(first.port) });
      try {
        await tail.waitFor("stderr", /connected to [^\n]*\n[^]*connected to /);
        await publish(again.base, { channel: "jobs", data: "after" });
        await tail.waitFor("stdout", /jobs message after/);
        expect(tail.lines().map((l) => l.replace(/^\S+ /, ""))).toEqual(["jobs message before", "jobs message while down", "jobs message after"]);
        expect(await tail.kill("SIGINT")).toBe(0);
      } finally {
        await again.stop();
      }
    } finally {
      await other.stop();
    }
  });
});

describe("edge-fanout tail, refusals and hostile data", () => {
  const { start } = relayFixture();

  it("exits 1 with the relay's code when the relay refuses the subscription, and names no id to resume", async () => {
    const r = await start({ FANOUT_JWT_SECRET: "tail-test-secret-0123456789abcdef0123" });
    const tail = new CliProcess(["tail", "private:x", "--url", r.base]);
    expect(await tail.exited).toBe(1);
    expect(tail.stderr).toMatch(/^error: unauthorized \(HTTP 401\)/m);
    expect(tail.stderr).toMatch(/nothing to resume from/);
  });

  it("says on stderr when the relay cannot resume from --last-event-id, and goes on live", async () => {
    const r = await start();
    const tail = new CliProcess(["tail", "t", "--url", r.base, "--last-event-id", "not-a-cursor"]);
    await tail.waitFor("stderr", /could not resume from the last id \(malformed\): messages may have been missed/);
    await tail.waitFor("stderr", CONNECTED);
    await publish(r.base, { channel: "t", data: "live" });
    await tail.waitFor("stdout", /t message live/);
  });

  it("ends quietly with exit 0 when its reader goes away (| head -1)", async () => {
    const r = await start();
    const tail = new CliProcess(["tail", "t", "--url", r.base]);
    await tail.waitFor("stderr", CONNECTED);
    await publish(r.base, { channel: "t", data: 1 });
    await tail.waitFor("stdout", /t message 1/);
    tail.closeStdout();
    await publish(r.base, { channel: "t", data: 2 });
    expect(await tail.exited).toBe(0);
    expect(tail.stderr).not.toMatch(/EPIPE|Error/);
  });

  it("never writes control characters from a message to the terminal", async () => {
    const r = await start();
    const tail = new CliProcess(["tail", "t", "--url", r.base]);
    await tail.waitFor("stderr", CONNECTED);
    await publish(r.base, { channel: "t", type: "x", data: "\u001b]0;pwned\u0007\u001b[2Jline\nbreak\u009b" });
    await publish(r.base, { channel: "t", data: { s: "\u001b[31m\u2028" } });
    await tail.waitFor("stdout", /\n.*\n/);
    expect(tail.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/);
    const [text, json] = tail.lines();
    expect(JSON.parse(text.split(" ").slice(3).join(" "))).toBe("\u001b]0;pwned\u0007\u001b[2Jline\nbreak\u009b");
    expect(JSON.parse(json.split(" ").slice(3).join(" "))).toEqual({ s: "\u001b[31m\u2028" });
  });
});
