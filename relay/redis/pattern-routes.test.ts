import { describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { publish, type SseClient } from "../../test/support/sse-client.js";
import { relayFixture } from "../../test/support/relay-harness.js";
import { redisFixture } from "../../test/support/modes.js";
import { prng } from "../../test/support/prng.js";
import { redisRoute } from "./pattern-routes.js";

describe("clients' globs are matched in the relay; Redis only sees cheap patterns (redis broker)", () => {
  const redisFx = redisFixture();
  let n = 0;
  const { start, open } = relayFixture();

  it("cuts a glob after its first star run, at a token boundary", () => {
    expect(redisRoute("*a*a*a*a*a*a*a*xyz")).toBe("*");
    expect(redisRoute("user:?:x*y*z")).toBe("user:?:x*");
    expect(redisRoute("user:[*]:a*b")).toBe("user:[*]:a*");
    expect(redisRoute("a[b-*]c*d")).toBe("a[b-*]c*");
    expect(redisRoute("a\\*b*c*")).toBe("a\\*b*");
    expect(redisRoute("ab**c*")).toBe("ab*");
    expect(redisRoute("plain")).toBe("plain");
    expect(redisRoute("open[*a*b")).toBe("open[*a*b");
    expect(redisRoute("[]*x")).toBe("[]*");
    expect(redisRoute("x\\")).toBe("x\\");
  });

  it("subscribes Redis to patterns with at most one trailing star run", async () => {
    const monitor = await new Redis(redisFx.server.url).monitor();
    const seen: string[][] = [];
    monitor.on("monitor", (_t: string, args: string[]) => {
      if (String(args[0]).toLowerCase() === "psubscribe") seen.push(args.slice(1));
    });
    try {
      // The costly glob is over the default pattern-cost limits; they are raised here so that
      // what Redis is asked to match is what this test sees.
      const r = await start({
        REDIS_URL: redisFx.server.url,
        FANOUT_LOG_PREFIX: `routes${n++}`,
        FANOUT_MAX_PATTERN_COST: "1000000",
        FANOUT_MAX_CONNECTION_PATTERN_COST: "2000000",
      });
      const costly = `*a*a*a*a*a*a*a*${"a".repeat(200)}`;
      const c = await open(`pattern=${encodeURIComponent(costly)}&pattern=${encodeURIComponent("k:?:*x*y")}`);
      await c.waitReady();
      await redisFx.redis.publish(`zz${"a".repeat(210)}`, "hit");
      await redisFx.redis.publish("k:1:_x_y", "hit2");
      await redisFx.redis.publish("k:1:_x_", "miss");
      const fence = await publish(r.base, { channel: "k:2:xy", data: "fence" });
      await c.waitFor((x) => x.envelopes().some((e) => e.id === fence.json.id), 5000, "fence");
      expect(c.envelopes().map((e) => [e.data, e.pattern])).toEqual([
        ["hit", costly],
        ["hit2", "k:?:*x*y"],
        ["fence", "k:?:*x*y"],
      ]);
      const subscribed = seen.flat();
      expect(subscribed).toEqual(expect.arrayContaining(["*", "k:?:*"]));
      expect(subscribed).not.toContain(costly);
      for (const p of subscribed) expect(p.indexOf("*") === -1 || /^[^*]*\*$/.test(p), p).toBe(true);
    } finally {
      monitor.disconnect();
    }
  });

  it("delivers exactly what Redis's own matcher would, byte for byte (randomized, Redis as the oracle)", async () => {
    const seed = 20261130;
    const rand = prng(seed);
    const pick = (s: string) => s[Math.floor(rand() * s.length)];
    const prefix = `routes${n++}`;
    const r = await start({ REDIS_URL: redisFx.server.url, FANOUT_LOG_PREFIX: prefix });
    const globs = new Set<string>();
    while (globs.size < 24) {
      let g = "";
      const len = 1 + Math.floor(rand() * 7);
      for (let i = 0; i < len; i++) g += pick("ab:*?[]^-\\ab*");
      globs.add(g);
    }
    const oracle = new Redis(redisFx.server.url);
    const expected = new Map<string, string[]>();
    oracle.on("pmessageBuffer", (pattern: string, channel: Buffer, payload: Buffer) => {
      // The relay's own marker channels are reserved: its clients never get them, Redis's
      // subscribers do (whether a glob matches one depends on the relay's random id).
      if (channel.toString().startsWith(`${prefix}:relay:`)) return;
      expected.set(pattern, [...(expected.get(pattern) ?? []), payload.toString()]);
    });
    try {
      await oracle.psubscribe(...globs);
      const clients = new Map<string, SseClient>();
      for (const g of globs) {
        const c = await open(`channel=fence&pattern=${encodeURIComponent(g)}`);
        await c.waitFor((x) => x.closed || x.events.some((e) => e.event === "ready"), 5000, "ready or refusal");
        // Globs the relay refuses (over its cost limits) are not what this test is about.
        if (c.status === 200) clients.set(g, c);
      }
      expect(clients.size).toBeGreaterThan(12);
      for (let i = 0; i < 300; i++) {
        const bytes: number[] = [];
        const len = 1 + Math.floor(rand() * 6);
        for (let k = 0; k < len; k++) bytes.push(rand() < 0.05 ? 0xff : pick("ab:-*?[]^\\").charCodeAt(0));
        await redisFx.redis.publish(Buffer.from(bytes), `m${i}`);
      }
      await redisFx.redis.publish("fence", "fence");
      for (const c of clients.values()) await c.waitFor((x) => x.envelopes().some((e) => e.data === "fence"), 10_000, "fence");
      let matched = 0;
      for (const [g, c] of clients) {
        const got = c.envelopes().filter((e) => e.channel !== "fence").map((e) => e.data);
        expect(got, `glob ${JSON.stringify(g)} (seed ${seed})`).toEqual(expected.get(g) ?? []);
        matched += got.length;
      }
      expect(matched).toBeGreaterThan(100);
    } finally {
      oracle.disconnect();
    }
  });
});
