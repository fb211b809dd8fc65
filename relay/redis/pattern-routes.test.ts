import { describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { publish, type SseClient } from "../../test/support/sse-client.js";
import { relayFixture } from "../../test/support/relay-harness.js";
import { redisFixture } from "../../test/support/modes.js";
import { prng } from "../../test/support/prng.js";
import { literalPrefix, MAX_ROUTES, PatternRoutes, routePrefix } from "./pattern-routes.js";

describe("clients' globs are matched in the relay; Redis only sees cheap patterns (redis broker)", () => {
  const redisFx = redisFixture();
  let n = 0;
  const { start, open } = relayFixture();

  it("starts a glob's route at its literal prefix, cut after the first colon", () => {
    expect(routePrefix("user:42:*")).toBe("user:");
    expect(routePrefix("user:?:x*y*z")).toBe("user:");
    expect(routePrefix("e17_*")).toBe("e17_");
    expect(routePrefix("ab[:]*")).toBe("ab");
    expect(routePrefix("a\\:b*")).toBe("a");
    expect(routePrefix("*a*b")).toBe("");
    expect(routePrefix("plain")).toBe("plain");
    expect(routePrefix("k:1")).toBe("k:");
  });

  it("subscribes Redis only to literal prefixes followed by one star", async () => {
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
      expect(subscribed).toContain("*");
      for (const p of subscribed) expect(p).toMatch(/^[^*?[\\]*\*$/);
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

  /** Streams of 100 patterns each (the default per-stream limit). */
  async function openGlobs(globs: string[]): Promise<SseClient[]> {
    const out: SseClient[] = [];
    for (let i = 0; i < globs.length; i += 100) {
      const c = await open(globs.slice(i, i + 100).map((g) => `pattern=${encodeURIComponent(g)}`).join("&"));
      await c.waitReady(10_000);
      out.push(c);
    }
    return out;
  }

  const numpat = async () => Number(await redisFx.redis.call("PUBSUB", "NUMPAT"));

  it("holds a bounded number of Redis patterns for 1,000 client globs, and delivers exactly", async () => {
    const r = await start({ REDIS_URL: redisFx.server.url, FANOUT_LOG_PREFIX: `routes${n++}` });
    const before = await numpat();
    const users = await openGlobs(Array.from({ length: 1000 }, (_, i) => `user:${i}:*`));
    // One route, `user:*`, carries every `user:<n>:*` glob.
    expect((await numpat()) - before).toBe(1);
    // Globs without a segment separator: distinct prefixes, merged once there are MAX_ROUTES.
    const flat = await openGlobs(Array.from({ length: 1000 }, (_, i) => `e${i}_*`));
    const held = (await numpat()) - before;
    expect(held).toBeGreaterThan(1);
    expect(held).toBeLessThanOrEqual(MAX_ROUTES);
    await redisFx.redis.publish("user:417:x", "plain"); // from another program
    await publish(r.base, { channel: "e999_m", data: "api" });
    await redisFx.redis.publish("user:4170:x", "nobody");
    await publish(r.base, { channel: "e0_m", data: "fence" });
    await flat[0].waitFor((x) => x.envelopes().some((e) => e.data === "fence"), 5000, "fence");
    await users[4].waitFor((x) => x.envelopes().length > 0, 5000, "user:417");
    await flat[9].waitFor((x) => x.envelopes().length > 0, 5000, "e999");
    expect(users[4].envelopes().map((e) => [e.channel, e.data, e.pattern])).toEqual([["user:417:x", "plain", "user:417:*"]]);
    expect(flat[9].envelopes().map((e) => [e.channel, e.data, e.pattern])).toEqual([["e999_m", "api", "e999_*"]]);
    expect(flat[0].envelopes().map((e) => [e.channel, e.data, e.pattern])).toEqual([["e0_m", "fence", "e0_*"]]);
    for (const c of [...users.filter((_, i) => i !== 4), ...flat.slice(1, 9)]) expect(c.envelopes()).toEqual([]);
  });

  it("moves a glob to a broader route under a steady publish stream without losing or repeating a message", async () => {
    const monitor = await new Redis(redisFx.server.url).monitor();
    const unsubscribed: string[] = [];
    monitor.on("monitor", (_t: string, args: string[]) => {
      if (String(args[0]).toLowerCase() === "punsubscribe") unsubscribed.push(...args.slice(1));
    });
    let stop = false;
    try {
      const r = await start({ REDIS_URL: redisFx.server.url, FANOUT_LOG_PREFIX: `routes${n++}` });
      const watched = await open("pattern=s0_*");
      await watched.waitReady();
      const before = await numpat();
      // A steady stream of plain PUBLISHes from another program, in order on one connection
      // and not waiting for each other, so some land while a route is being replaced.
      const publisher = new Redis(redisFx.server.url);
      let sent = 0;
      const stream = (async () => {
        const pending: Promise<unknown>[] = [];
        while (!stop) {
          for (let k = 0; k < 5; k++) pending.push(publisher.publish("s0_x", `m${sent++}`));
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        await Promise.all(pending);
        publisher.disconnect();
      })();
      // Fill the relay's routes with prefixes that share nothing (distinct first characters),
      // then add `s1_*`, `s2_*`, `s3_*`: at MAX_ROUTES the closest prefixes, `s0_` `s1_` `s2_`
      // `s3_`, are merged into `s*`, and the watched glob moves there mid-stream.
      const far = [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrtuvwxyz0123456789"].slice(0, MAX_ROUTES - 3);
      expect(far.length).toBe(MAX_ROUTES - 3);
      await openGlobs(far.map((c) => `${c}_*`));
      for (const g of ["s1_*", "s2_*", "s3_*"]) await openGlobs([g]);
      await openGlobs(Array.from({ length: 100 }, (_, i) => `s${i}_*`));
      // The stream goes on past the release of `s0_*` (MONITOR reports it a little later).
      const tick = () => new Promise((resolve) => setTimeout(resolve, 10));
      for (let k = 0; k < 500 && !unsubscribed.includes("s0_*"); k++) await tick();
      const at = sent;
      while (sent < at + 20) await tick();
      stop = true;
      await stream;
      await redisFx.redis.publish("s0_x", "end");
      await watched.waitFor((x) => x.envelopes().some((e) => e.data === "end"), 10_000, "end");
      expect(unsubscribed).toContain("s0_*");
      expect(watched.envelopes().map((e) => e.data)).toEqual([...Array.from({ length: sent }, (_, i) => `m${i}`), "end"]);
      expect((await numpat()) - before).toBeLessThanOrEqual(MAX_ROUTES);
    } finally {
      stop = true;
      monitor.disconnect();
    }
  });
});

describe("pattern routes (real Redis)", () => {
  const redisFx = redisFixture();

  it("gives globs with a literal prefix their own route while `*` is held, so `*` goes with its last glob", async () => {
    const sub = new Redis(redisFx.server.url);
    try {
      const routes = new PatternRoutes({ psubscribe: (p) => sub.psubscribe(p), punsubscribe: (p) => sub.punsubscribe(p) });
      await routes.add("*:alerts");
      await routes.add("user:1:*");
      await routes.add("?x");
      expect(routes.redisPatterns.sort()).toEqual(["*", "user:*"]);
      await routes.remove("*:alerts");
      await routes.remove("?x");
      expect(routes.redisPatterns).toEqual(["user:*"]);
      expect(await redisFx.redis.call("PUBSUB", "NUMPAT")).toBe(1);
    } finally {
      sub.disconnect();
    }
  });

  it("keeps every glob carried by a route, at most cap + 1 Redis patterns, and releases them all", async () => {
    const seed = 7301;
    const rand = prng(seed);
    const sub = new Redis(redisFx.server.url);
    try {
      const max = 4;
      const routes = new PatternRoutes({ psubscribe: (p) => sub.psubscribe(p), punsubscribe: (p) => sub.punsubscribe(p) }, max);
      const numpat = async () => Number(await redisFx.redis.call("PUBSUB", "NUMPAT"));
      const pool = Array.from({ length: 40 }, (_, i) => [`a${i}_*`, `b:${i}:*`, `c${i % 7}x${i}*`, `d${i}?`][i % 4]);
      const present = new Set<string>();
      for (let round = 0; round < 6; round++) {
        const ops: Promise<void>[] = [];
        for (let k = 0; k < 25; k++) {
          const g = pool[Math.floor(rand() * pool.length)];
          if (present.has(g) && rand() < 0.5) {
            present.delete(g);
            ops.push(routes.remove(g));
          } else {
            present.add(g);
            ops.push(routes.add(g));
          }
          expect(routes.redisPatterns.length, `seed ${seed}`).toBeLessThanOrEqual(max + 1);
        }
        await Promise.all(ops);
        const held = routes.redisPatterns;
        expect(held.length, `seed ${seed}`).toBeLessThanOrEqual(max);
        expect(await numpat()).toBe(held.length);
        for (const g of present) {
          const lp = literalPrefix(g);
          expect(held.some((p) => lp.startsWith(p.slice(0, -1))), `${g} in ${held} (seed ${seed})`).toBe(true);
        }
      }
      await Promise.all([...present].map((g) => routes.remove(g)));
      expect(routes.redisPatterns).toEqual([]);
      expect(await numpat()).toBe(0);
    } finally {
      sub.disconnect();
    }
  });
});
