import { describe, expect, it } from "vitest";
import { brokerModes } from "../test/support/modes.js";
import { relayFixture } from "../test/support/relay-harness.js";
import { runCli } from "./testing/cli-process.js";

describe.each(brokerModes())("edge-fanout stats ($name)", (mode) => {
  const { start, open } = relayFixture();

  it("prints the relay's counters and its channels and patterns by subscriber count; --json prints the relay's JSON", async () => {
    const r = await start(mode.env());
    const clients = await Promise.all([open("channel=orders&channel=chat&pattern=user:*"), open("channel=orders"), open("channel=orders")]);
    await Promise.all(clients.map((c) => c.waitReady()));

    const res = await runCli(["stats", "--url", r.base]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toBe("");
    const lines = res.stdout.split("\n");
    expect(lines).toContain(`broker                  ${mode.name === "redis broker" ? "redis" : "memory"}`);
    expect(lines).toContain("connections             3");
    const channels = lines.indexOf("CHANNEL  SUBSCRIBERS");
    expect(lines.slice(channels, channels + 3)).toEqual(["CHANNEL  SUBSCRIBERS", "orders             3", "chat               1"]);
    expect(lines).toContain("user:*             1");

    const json = await runCli(["stats", "--json"], { FANOUT_URL: r.base });
    expect(JSON.parse(json.stdout)).toMatchObject({ connections: 3, channels: { orders: 3, chat: 1 }, patterns: { "user:*": 1 } });
  });

  it("--fleet says clearly when the relay has no fleet view", async () => {
    const r = await start(mode.env());
    // A relay answering 404 for the route (here: a path it does not serve).
    const notFound = await runCli(["stats", "--fleet", "--url", `${r.base}/not-a-relay`]);
    expect(notFound.code).toBe(1);
    expect(notFound.stderr.trim()).toMatch(/^error: this relay has no fleet view: GET \/not-a-relay\/v1\/stats\?scope=fleet answered HTTP 404 \(not_found\)/);

    // The relay itself: until it reports a fleet (a `relays` list), its own stats must not pass for one.
    const raw = await (await fetch(`${r.base}/v1/stats?scope=fleet`)).json();
    const fleet = await runCli(["stats", "--fleet", "--url", r.base]);
    if (Array.isArray(raw.relays)) {
      expect(fleet.code, fleet.stderr).toBe(0);
      expect(fleet.stdout).toMatch(/^relays:$/m);
    } else {
      expect(fleet.code).toBe(1);
      expect(fleet.stdout).toBe("");
      expect(fleet.stderr.trim()).toMatch(/^error: this relay has no fleet view: it ignored \?scope=fleet/);
    }
  });
});

describe("edge-fanout stats with auth configured", () => {
  const { start, open } = relayFixture();

  it("shows names only with a key (--key or FANOUT_PUBLISH_KEY), says so without one, exits 1 on a wrong one", async () => {
    const r = await start({ FANOUT_PUBLISH_KEYS: "ops-key" });
    const c = await open("channel=user:7:secret", { Authorization: "Bearer ops-key" });
    await c.waitReady();

    const anonymous = await runCli(["stats", "--url", r.base]);
    expect(anonymous.code).toBe(0);
    expect(anonymous.stdout).not.toContain("user:7");
    expect(anonymous.stdout).toMatch(/^connections +1$/m);
    expect(anonymous.stderr).toMatch(/names hidden.*--key/);

    for (const res of [await runCli(["stats", "--url", r.base, "--key", "ops-key"]), await runCli(["stats"], { FANOUT_URL: r.base, FANOUT_PUBLISH_KEY: "ops-key" })]) {
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/^user:7:secret +1$/m);
      expect(res.stderr).toBe("");
    }
    const wrong = await runCli(["stats", "--url", r.base, "--key", "nope"]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^error: unauthorized \(HTTP 401\)/);
  });
});
