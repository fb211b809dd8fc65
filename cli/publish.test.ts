import { describe, expect, it } from "vitest";
import { brokerModes } from "../test/support/modes.js";
import { relayFixture } from "../test/support/relay-harness.js";
import { runCli } from "./testing/cli-process.js";

describe.each(brokerModes())("edge-fanout publish ($name)", (mode) => {
  const { start, open } = relayFixture();

  it("publishes JSON as JSON and anything else as a string; a subscriber receives them and the result is printed", async () => {
    const r = await start(mode.env());
    const sub = await open("channel=orders");
    await sub.waitReady();

    const json = await runCli(["publish", "orders", '{"id":42,"items":[1,2]}', "--type", "order.created", "--id", "o-42", "--meta", "source=cli", "--meta", "correlation_id=c-77", "--url", r.base]);
    expect(json.code, json.stderr).toBe(0);
    const result = JSON.parse(json.stdout);
    expect(result).toMatchObject({ channel: "orders", receivers: 1, duplicate: false });
    const text = await runCli(["publish", "orders", "hello world", "--url", r.base]);
    const forced = await runCli(["publish", "orders", "42", "--string", "--url", r.base]);
    const number = await runCli(["publish", "orders", "--", "-5"], { FANOUT_URL: r.base });
    expect([text.code, forced.code, number.code]).toEqual([0, 0, 0]);

    await sub.waitMessages(4);
    const got = sub.envelopes();
    expect(got[0]).toMatchObject({ id: result.id, channel: "orders", type: "order.created", data: { id: 42, items: [1, 2] }, meta: { source: "cli", correlation_id: "c-77" } });
    expect(got.slice(1).map((e) => e.data)).toEqual(["hello world", "42", -5]);
    expect(sub.messages()[0].event).toBe("order.created");

    // The idempotency id reached the relay: the same id again is a duplicate.
    const again = await runCli(["publish", "orders", "{}", "--id", "o-42", "--url", r.base]);
    expect(JSON.parse(again.stdout).duplicate).toBe(true);
  });

  it("exits 1 with the relay's error code when refused, and takes the key from --key or FANOUT_PUBLISH_KEY", async () => {
    const r = await start({ ...mode.env(), FANOUT_PUBLISH_KEYS: "k-cli" });
    const anonymous = await runCli(["publish", "a", "1", "--url", r.base]);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stdout).toBe("");
    expect(anonymous.stderr.trim()).toMatch(/^error: unauthorized \(HTTP 401\): /);

    const badChannel = await runCli(["publish", "bad\u0001channel", "1", "--url", r.base, "--key", "k-cli"]);
    expect(badChannel.code).toBe(1);
    expect(badChannel.stderr).toMatch(/^error: invalid_channel \(HTTP 400\)/);
    // A meta key the relay refuses is sent as given, not dropped on the way (`__proto__`).
    const badMetaKey = await runCli(["publish", "a", "1", "--meta", "__proto__=x", "--url", r.base, "--key", "k-cli"]);
    expect(badMetaKey.code).toBe(1);
    expect(badMetaKey.stderr).toMatch(/^error: invalid_meta \(HTTP 400\)/);

    expect((await runCli(["publish", "a", "1", "--url", r.base, "--key", "k-cli"])).code).toBe(0);
    expect((await runCli(["publish", "a", "1"], { FANOUT_URL: r.base, FANOUT_PUBLISH_KEY: "k-cli" })).code).toBe(0);
  });
});

describe("edge-fanout publish, usage and network failures", () => {
  it("exits 2 with one line for a usage error, 1 with network_error when no relay answers", async () => {
    const usage = await runCli(["publish", "only-a-channel"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr.trim().split("\n")).toEqual(["edge-fanout publish: expected <channel> <data>, got 1 argument (see edge-fanout publish --help)"]);
    const badUrl = await runCli(["publish", "a", "1", "--url", "ftp://x"]);
    expect(badUrl.code).toBe(2);
    const badMeta = await runCli(["publish", "a", "1", "--meta", "no-equals-sign"]);
    expect(badMeta.code).toBe(2);
    expect(badMeta.stderr).toContain('--meta takes key=value, got "no-equals-sign"');

    // A port nothing listens on: reserve one by binding and closing it.
    const { createServer } = await import("node:net");
    const srv = createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => srv.once("listening", resolve));
    const port = (srv.address() as { port: number }).port;
    await new Promise((resolve) => srv.close(resolve));
    const down = await runCli(["publish", "a", "1", "--url", `http://127.0.0.1:${port}`]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^error: network_error: .*ECONNREFUSED/);
  });
});
