import { describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { publish, type SseClient } from "../../test/support/sse-client.js";
import { relayFixture, type RunningRelay } from "../../test/support/relay-harness.js";
import { redisFixture } from "../../test/support/modes.js";
import { partitionOf } from "../../protocol/partition.js";
import { macKey } from "../../protocol/publish-script.js";

/**
 * What arrives on a relay's Redis subscription from other programs: only the log moves a
 * cursor; everything else is plain data, delivered live, whatever it looks like.
 */
describe("payloads from other Redis clients (redis broker)", () => {
  const redisFx = redisFixture();
  let n = 0;
  const { start, open } = relayFixture();
  const startRelay = (): Promise<RunningRelay> => start({ REDIS_URL: redisFx.server.url, FANOUT_LOG_PREFIX: `forge${n++}` });
  const partitionOfChannel = (r: RunningRelay, ch: string) => partitionOf(ch, r.relay.context.config.log.partitions);

  /** A sentinel API publish every client of `ch` must see after the messages before it. */
  async function sentinel(r: RunningRelay, ch: string, clients: SseClient[]): Promise<string> {
    const res = await publish(r.base, { channel: ch, data: "sentinel" });
    expect(res.status).toBe(200);
    for (const c of clients) await c.waitFor((x) => x.envelopes().some((e) => e.id === res.json.id), 5000, "sentinel");
    return res.json.id;
  }

  it("delivers an envelope look-alike with a future id as plain data; real messages keep flowing to old and new clients", async () => {
    const r = await startRelay();
    const p = partitionOfChannel(r, "cur");
    const c1 = await open("channel=cur");
    await c1.waitReady();
    const future = `${p}-${Date.now() + 540_000}-0`;
    await redisFx.redis.publish("cur", JSON.stringify({ id: future, channel: "cur", data: "x", ts: 1 }));
    // The same with a made-up tag, and one far in the past.
    await redisFx.redis.publish("cur", JSON.stringify({ id: `${p}-${Date.now() + 60_000}-0`, channel: "cur", data: "y", ts: 1, mac: "0".repeat(40) }));
    await redisFx.redis.publish("cur", JSON.stringify({ id: `${p}-1-0`, channel: "cur", data: "z", ts: 1 }));
    const real = await publish(r.base, { channel: "cur", data: "real" });
    await c1.waitMessages(4);
    const env = c1.envelopes();
    expect(env.slice(0, 3).map((e) => e.id)).toEqual([expect.stringMatching(/^x-/), expect.stringMatching(/^x-/), expect.stringMatching(/^x-/)]);
    expect(env[0].data).toEqual({ id: future, channel: "cur", data: "x", ts: 1 });
    expect(env[3]).toMatchObject({ id: real.json.id, data: "real" });

    // A client connecting afterwards gets real messages too, and can resume.
    const c2 = await open("channel=cur");
    await c2.waitReady();
    const later = await publish(r.base, { channel: "cur", data: "later" });
    await c2.waitFor((c) => c.envelopes().some((e) => e.id === later.json.id), 5000, "later message");
    await c1.waitFor((c) => c.envelopes().some((e) => e.id === later.json.id), 5000, "later message");
    // Resuming from the frame of the real message replays what came after it.
    const c3 = await open("channel=cur", { "Last-Event-ID": c1.messages()[3].id! });
    await c3.waitFor((c) => c.envelopes().some((e) => e.id === later.json.id), 5000, "replayed message");
    expect(c3.envelopes().map((e) => e.data)).toEqual(["later"]);
  });

  it("delivers a re-published copy of a real envelope as plain data, even right after the original", async () => {
    const r = await startRelay();
    const watch = new Redis(redisFx.server.url);
    const seen: string[] = [];
    watch.on("message", (_ch: string, msg: string) => seen.push(msg));
    await watch.subscribe("copy");
    try {
      const c = await open("channel=copy&pattern=cop*");
      await c.waitReady();
      const real = await publish(r.base, { channel: "copy", data: { n: 1 } });
      await c.waitMessages(1);
      for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((x) => setTimeout(x, 10));
      const copy = seen[0];
      expect(JSON.parse(copy)).toMatchObject({ id: real.json.id, mac: expect.stringMatching(/^[0-9a-f]{40}$/) });
      // Twice, back to back (the second arrives right after the first on the relay's link).
      await redisFx.redis.publish("copy", copy);
      await redisFx.redis.publish("copy", copy);
      // A valid copy with altered data.
      await redisFx.redis.publish("copy", copy.replace('{"n":1}', '{"n":2}'));
      await sentinel(r, "copy", [c]);
      const env = c.envelopes();
      expect(env.map((e) => (e.id.startsWith("x-") ? "plain" : e.id))).toEqual([real.json.id, "plain", "plain", "plain", env[4].id]);
      expect(env[0]).toEqual({ id: real.json.id, channel: "copy", data: { n: 1 }, ts: expect.any(Number) });
      expect((env[1].data as { id: string }).id).toBe(real.json.id);
      expect((env[3].data as { data: unknown }).data).toEqual({ n: 2 });
      // Each publish once, by the exact channel, though the pattern matches too.
      expect(env.every((e) => e.pattern === undefined)).toBe(true);
    } finally {
      watch.disconnect();
    }
  });

  it("delivers a copy of an envelope published before the relay started as plain data", async () => {
    const prefix = `forge${n++}`;
    const first = await start({ REDIS_URL: redisFx.server.url, FANOUT_LOG_PREFIX: prefix });
    const watch = new Redis(redisFx.server.url);
    const seen: string[] = [];
    watch.on("message", (_ch: string, msg: string) => seen.push(msg));
    await watch.subscribe("old");
    try {
      const real = await publish(first.base, { channel: "old", data: "original" });
      for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((x) => setTimeout(x, 10));
      expect(JSON.parse(seen[0]).id).toBe(real.json.id);
      const r = await start({ REDIS_URL: redisFx.server.url, FANOUT_LOG_PREFIX: prefix });
      const c = await open("channel=old");
      await c.waitReady();
      await redisFx.redis.publish("old", seen[0]);
      await sentinel(r, "old", [c]);
      expect(c.envelopes()[0]).toMatchObject({ id: expect.stringMatching(/^x-/), data: { id: real.json.id, data: "original" } });
    } finally {
      watch.disconnect();
    }
  });

  it("never shows SSE clients the envelope's mac", async () => {
    const r = await startRelay();
    const c = await open("channel=m&pattern=m*");
    await c.waitReady();
    await publish(r.base, { channel: "m", data: 1, type: "t" });
    await c.waitMessages(1);
    expect(Object.keys(JSON.parse(c.messages()[0].data)).sort()).toEqual(["channel", "data", "id", "ts", "type"]);
    expect(c.messages()[0].data).not.toContain("mac");
  });

  it("takes up a new secret when the partition's secret changed in Redis (Redis lost its data)", async () => {
    const r = await startRelay();
    const prefix = r.relay.context.config.log.prefix;
    const c = await open("channel=sec");
    await c.waitReady();
    await redisFx.redis.del(macKey(prefix, partitionOfChannel(r, "sec")));
    // The next publish creates a new secret; the relay reloads when tags stop verifying.
    let real: string | undefined;
    for (let i = 0; i < 50 && real === undefined; i++) {
      const res = await publish(r.base, { channel: "sec", data: i });
      await c.waitFor((x) => x.messages().length > i, 5000, `message ${i}`);
      if (c.envelopes()[i].id === res.json.id) real = res.json.id;
      else await new Promise((x) => setTimeout(x, 50));
    }
    expect(real).toBeDefined();
    // Every message was delivered, as plain data (the whole envelope) while the secret was unknown.
    const data = c.envelopes().map((e) => (e.id.startsWith("x-") ? (e.data as { data: unknown }).data : e.data));
    expect(data).toEqual(data.map((_, i) => i));
  });

  it("survives deeply nested payloads: delivered as text, and the messages after them still flow", async () => {
    const r = await startRelay();
    const c = await open("channel=deep&pattern=dee*");
    await c.waitReady();
    const nest = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
    const lookAlike = `{"id":"0-${Date.now()}-0","channel":"deep","data":${nest(20_000)},"ts":1}`;
    await redisFx.redis.publish("deep", lookAlike);
    await redisFx.redis.publish("deep", nest(20_000));
    // Through the API: refused at publish (nesting limit) or delivered; never a crash.
    const viaApi = await publish(r.base, `{"channel":"deep","data":${nest(4113)}}`);
    expect([200, 400]).toContain(viaApi.status);
    const after = await sentinel(r, "deep", [c]);
    const env = c.envelopes();
    expect(env[0].data).toBe(lookAlike);
    expect(env[1].data).toBe(nest(20_000));
    expect(env[env.length - 1].id).toBe(after);
    expect(env.length).toBe(viaApi.status === 200 ? 4 : 3);
    // The relay is still up for everyone.
    expect((await fetch(`${r.base}/healthz`)).status).toBe(200);
  });
  it("takes type and meta from the documented $fanout form, still as plain live data; the seed's shape stays data", async () => {
    const r = await startRelay();
    const c = await open("channel=lab");
    await c.waitReady();
    const meta = { source: "legacy-billing", correlation_id: "c-9" };
    await redisFx.redis.publish("lab", JSON.stringify({ $fanout: 1, type: "order.created", meta, data: { n: 1 } }));
    const seed = { id: "evt-1", type: "order.created", timestamp: 1795648097480, source: "seed", data: { n: 2 } };
    await redisFx.redis.publish("lab", JSON.stringify(seed));
    // Not the form (an id in it, a bad meta): delivered whole, as data.
    const withId = { $fanout: 1, id: "0-1-0", type: "x", data: 3 };
    await redisFx.redis.publish("lab", JSON.stringify(withId));
    const badMeta = { $fanout: 1, meta: { n: 1 }, data: 4 };
    await redisFx.redis.publish("lab", JSON.stringify(badMeta));
    await sentinel(r, "lab", [c]);
    const env = c.envelopes();
    expect(env.slice(0, 4)).toEqual([
      { id: expect.stringMatching(/^x-/), channel: "lab", type: "order.created", meta, data: { n: 1 }, ts: expect.any(Number) },
      { id: expect.stringMatching(/^x-/), channel: "lab", data: seed, ts: expect.any(Number) },
      { id: expect.stringMatching(/^x-/), channel: "lab", data: withId, ts: expect.any(Number) },
      { id: expect.stringMatching(/^x-/), channel: "lab", data: badMeta, ts: expect.any(Number) },
    ]);
    // The typed one is an SSE event of its type; none of them moved the stream's cursor.
    expect(c.messages()[0].event).toBe("order.created");
    const ready = c.events.find((e) => e.event === "ready")!;
    expect(c.messages().slice(0, 4).map((m) => m.id)).toEqual([ready.id, ready.id, ready.id, ready.id]);
  });
});
