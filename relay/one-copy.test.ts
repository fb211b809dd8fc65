import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { publish, type SseClient } from "../test/support/sse-client.js";
import { relayFixture, type RunningRelay } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";

const modes = brokerModes();

/**
 * A message matching several of a client's subscriptions (its channel and patterns) reaches
 * it once: the exact channel's copy, without `pattern`, when it has the channel; otherwise
 * the first pattern's copy.
 */
async function until(r: RunningRelay, clients: SseClient[]): Promise<string> {
  const res = await publish(r.base, { channel: "o:1", data: "end" });
  for (const c of clients) await c.waitFor((x) => x.envelopes().some((e) => e.id === res.json.id), 5000, "end marker");
  return res.json.id;
}

describe.each(modes)("one copy per publish per client on the $name", (mode) => {
  const { start, open } = relayFixture();

  it("through the API: 1 channel + 2 patterns, and 2 patterns alone", async () => {
    const r = await start(mode.env());
    const both = await open("channel=o:1&pattern=o:*&pattern=*:1");
    const patterns = await open("pattern=o:*&pattern=*:1");
    await both.waitReady();
    await patterns.waitReady();
    const a = await publish(r.base, { channel: "o:1", data: "a" });
    const b = await publish(r.base, { messages: [{ channel: "o:1", data: "b" }, { channel: "o:1", data: "b" }] });
    // Receivers count the relay's matching subscriptions (as Redis's PUBLISH reply does).
    expect(a.json.receivers).toBe(3);
    await until(r, [both, patterns]);
    expect(both.envelopes().map((e) => [e.data, e.pattern])).toEqual([
      ["a", undefined],
      ["b", undefined],
      ["b", undefined],
      ["end", undefined],
    ]);
    expect(patterns.envelopes().map((e) => e.data)).toEqual(["a", "b", "b", "end"]);
    expect(b.json.results.map((x: { id: string }) => x.id)).toEqual(both.envelopes().slice(1, 3).map((e) => e.id));
  });

});

describe("one copy per plain Redis PUBLISH per client (redis broker)", () => {
  const mode = modes[1];
  const { start, open } = relayFixture();
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(mode.redis()!.url);
  });
  afterAll(() => redis.disconnect());

  it("1 channel + 2 patterns and 2 patterns alone get it once; two identical publishes arrive twice", async () => {
    const r = await start(mode.env());
    const both = await open("channel=o:1&pattern=o:*&pattern=*:1");
    const patterns = await open("pattern=o:*&pattern=*:1");
    const other = await open("pattern=o:*");
    await Promise.all([both.waitReady(), patterns.waitReady(), other.waitReady()]);
    expect(await redis.publish("o:1", "plain")).toBe(3);
    await redis.publish("o:1", '{"same":1}');
    await redis.publish("o:1", '{"same":1}');
    await until(r, [both, patterns, other]);
    expect(both.envelopes().map((e) => [e.data, e.pattern])).toEqual([
      ["plain", undefined],
      [{ same: 1 }, undefined],
      [{ same: 1 }, undefined],
      ["end", undefined],
    ]);
    expect(patterns.envelopes().map((e) => e.data)).toEqual(["plain", { same: 1 }, { same: 1 }, "end"]);
    expect(other.envelopes().map((e) => [e.data, e.pattern])).toEqual([
      ["plain", "o:*"],
      [{ same: 1 }, "o:*"],
      [{ same: 1 }, "o:*"],
      ["end", "o:*"],
    ]);
    const ids = both.envelopes().map((e) => e.id);
    expect(new Set(ids).size).toBe(4);
  });
});
