import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { parseMessageId } from "../../protocol/position.js";
import { partitionOf, streamKey } from "../../protocol/partition.js";
import { PUBLISH_SCRIPT, publishScriptArgs } from "../../protocol/publish-script.js";
import { shardOfPartition } from "../../protocol/shard-map.js";
import { relayFixture } from "../../test/support/relay-harness.js";
import { RedisSentinelSetup } from "../../test/support/redis-cluster.js";
import { freePort, RedisServer } from "../../test/support/redis-server.js";
import { channelOnShard, redisShardsFixture } from "../../test/support/redis-shards.js";
import { publish, SseClient } from "../../test/support/sse-client.js";

const PARTITIONS = 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let prefixes = 0;

/** The shard a message id's partition lives on. */
function shardOfId(id: string, shards: number): number {
  return shardOfPartition(parseMessageId(id)!.partition, shards);
}

/** Entries of `channel`'s messages in each shard's log, by shard. */
async function logLengths(clients: Redis[], prefix: string): Promise<number[]> {
  return Promise.all(
    clients.map(async (c) => {
      let n = 0;
      for (let p = 0; p < PARTITIONS; p++) n += await c.xlen(streamKey(prefix, p));
      return n;
    }),
  );
}

/** Per channel, the `data` values a client received, in arrival order. */
function byChannel(c: SseClient): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const e of c.envelopes()) (out[e.channel] ??= []).push(e.data);
  return out;
}

describe.each([2, 3])("a log sharded over %i independent Redis servers", (S) => {
  const shards = redisShardsFixture(S);
  const { start, open, openUrl } = relayFixture();
  const channels = Array.from({ length: S }, (_, s) => channelOnShard("sh:", s, PARTITIONS, S));

  async function relay() {
    const prefix = `s${S}x${prefixes++}`;
    const r = await start({ REDIS_URL: shards.url, FANOUT_LOG_PARTITIONS: String(PARTITIONS), FANOUT_LOG_PREFIX: prefix });
    return { r, prefix };
  }

  it("publishes each channel to its partition's shard and delivers exact and pattern subscriptions from all", async () => {
    const { r, prefix } = await relay();
    const exact = await open(channels.map((c) => `channel=${encodeURIComponent(c)}`).join("&"));
    const pattern = await open("pattern=sh:*");
    const both = await open(`${channels.map((c) => `channel=${encodeURIComponent(c)}`).join("&")}&pattern=sh:*`);
    await Promise.all([exact.waitReady(), pattern.waitReady(), both.waitReady()]);
    for (const [s, channel] of channels.entries()) {
      const res = await publish(r.base, { channel, data: s });
      expect(res.status).toBe(200);
      expect(shardOfId(res.json.id, S)).toBe(s);
      // One relay holds the channel (on its shard) and the pattern (on every shard).
      expect(res.json.receivers).toBe(2);
    }
    await Promise.all([exact.waitMessages(S), pattern.waitMessages(S), both.waitMessages(S)]);
    await sleep(100);
    // A client on a channel and a pattern matching it gets one copy per publish.
    expect(both.envelopes().map((e) => e.data)).toEqual(channels.map((_, s) => s));
    expect(exact.envelopes().map((e) => e.data)).toEqual(channels.map((_, s) => s));
    expect(pattern.envelopes().map((e) => [e.channel, e.pattern, e.data])).toEqual(channels.map((c, s) => [c, "sh:*", s]));
    // Each message is in its own shard's log and nowhere else.
    expect(await logLengths(shards.clients, prefix)).toEqual(channels.map(() => 1));
    // One subscriber connection per shard for the log, plus the relay-to-relay control
    // channel's on shard 0.
    const pubsub = await Promise.all(shards.clients.map(async (c) => String(await c.call("CLIENT", "LIST", "TYPE", "pubsub")).trim().split("\n").length));
    expect(pubsub).toEqual(shards.clients.map((_, s) => (s === 0 ? 2 : 1)));
  });

  it("changes a stream's subscriptions through another relay and counts presence across relays (both over shard 0)", async () => {
    const prefix = `s${S}x${prefixes++}`;
    const env = { REDIS_URL: shards.url, FANOUT_LOG_PARTITIONS: String(PARTITIONS), FANOUT_LOG_PREFIX: prefix, FANOUT_PRESENCE_CHANNELS: "sh:*" };
    const a = await start(env);
    const b = await start(env);
    const c = await openUrl(`${a.base}/v1/events?channel=${encodeURIComponent(channels[0])}`);
    const other = await openUrl(`${b.base}/v1/events?channel=${encodeURIComponent(channels[0])}`);
    await Promise.all([c.waitReady(), other.waitReady()]);
    const { connection, secret } = JSON.parse(c.events.find((e) => e.event === "ready")!.data);
    // Relay b does not hold the stream: it forwards the change to relay a.
    const res = await fetch(`${b.base}/v1/connections/${encodeURIComponent(connection)}/subscriptions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ secret, add: { channels: [channels[S - 1]] } }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    await c.waitFor((x) => x.events.some((e) => e.event === "subscribed"), 5000, "the ack");
    expect((await publish(b.base, { channel: channels[S - 1], data: "added" })).status).toBe(200);
    await c.waitFor((x) => x.envelopes().some((e) => e.data === "added"), 5000, "the added channel's message");
    // Both relays' streams count on the channel (anonymous streams are counted, not listed).
    const stats = await (await fetch(`${a.base}/v1/presence/${encodeURIComponent(channels[0])}?stats=1`)).json();
    expect(stats).toMatchObject({ connections: 2, anonymous: 2 });
  });

  it("publishes a batch spanning shards, in request order per channel; a batch with one bad message writes nothing anywhere", async () => {
    const { r, prefix } = await relay();
    const c = await open("pattern=sh:*");
    await c.waitReady();
    const messages = [0, 1, 2, 3, 4, 5].map((i) => ({ channel: channels[i % S], data: i }));
    const res = await publish(r.base, { messages });
    expect(res.status).toBe(200);
    expect(res.json.results.map((x: { channel: string }) => x.channel)).toEqual(messages.map((m) => m.channel));
    expect(res.json.results.map((x: { id: string }) => shardOfId(x.id, S))).toEqual(messages.map((_, i) => i % S));
    await c.waitMessages(6);
    const got = byChannel(c);
    for (const [s, ch] of channels.entries()) expect(got[ch]).toEqual(messages.filter((_, i) => i % S === s).map((m) => m.data));

    const before = await logLengths(shards.clients, prefix);
    const bad = await publish(r.base, { messages: [{ channel: channels[0], data: 1 }, { channel: `${prefix}:relay:x`, data: 2 }, { channel: channels[1], data: 3 }] });
    expect(bad.status).toBe(400);
    expect(await logLengths(shards.clients, prefix)).toEqual(before);
  });

  it("answers 503 when one shard's part of a batch fails after another's was written; a retry with ids publishes each message once", async () => {
    const { r, prefix } = await relay();
    const c = await open("pattern=sh:*");
    await c.waitReady();
    // Shard 1's part fails: its partition's log key holds a string (WRONGTYPE on XADD).
    const broken = streamKey(prefix, partitionOf(channels[1], PARTITIONS));
    await shards.clients[1].set(broken, "not a stream");
    const messages = [
      { channel: channels[0], data: "x", id: "m1" },
      { channel: channels[1], data: "y", id: "m2" },
    ];
    const first = await publish(r.base, { messages });
    expect(first.status).toBe(503);
    expect(first.json.error.code).toBe("broker_unavailable");
    await c.waitMessages(1);
    await shards.clients[1].del(broken);
    const retry = await publish(r.base, { messages });
    expect(retry.status).toBe(200);
    expect(retry.json.results.map((x: { duplicate: boolean }) => x.duplicate)).toEqual([true, false]);
    await c.waitMessages(2);
    await sleep(100);
    expect(c.envelopes().map((e) => e.data)).toEqual(["x", "y"]);
  });

  it("delivers a plain PUBLISH to channel subscribers from the channel's shard, and to pattern subscribers from any shard", async () => {
    await relay();
    const exact = await open(`channel=${encodeURIComponent(channels[0])}`);
    const pattern = await open("pattern=sh:*");
    await Promise.all([exact.waitReady(), pattern.waitReady()]);
    // On another shard than the channel's: only the pattern (subscribed everywhere) sees it.
    expect(await shards.clients[S - 1].publish(channels[0], "elsewhere")).toBe(1);
    await pattern.waitMessages(1);
    expect(await shards.clients[0].publish(channels[0], "home")).toBe(2);
    await Promise.all([exact.waitMessages(1), pattern.waitMessages(2)]);
    await sleep(100);
    expect(exact.envelopes().map((e) => e.data)).toEqual(["home"]);
    expect(pattern.envelopes().map((e) => e.data)).toEqual(["elsewhere", "home"]);
  });

  it("resumes with one Last-Event-ID across partitions on different shards, on this relay or another", async () => {
    const { r, prefix } = await relay();
    const qs = channels.map((c) => `channel=${encodeURIComponent(c)}`).join("&");
    const first = await open(qs);
    await first.waitReady();
    await publish(r.base, { channel: channels[0], data: "seen" });
    await first.waitMessages(1);
    const last = first.lastEventId!;
    first.close();
    const missed = channels.flatMap((ch, s) => [`${s}a`, `${s}b`].map((data) => ({ channel: ch, data })));
    for (const m of missed) expect((await publish(r.base, m)).status).toBe(200);

    const again = await open(qs, { "Last-Event-ID": last });
    await again.waitMessages(missed.length);
    expect(again.events.some((e) => e.event === "reset")).toBe(false);
    expect(byChannel(again)).toEqual(byChannel({ envelopes: () => missed } as unknown as SseClient));

    const other = await start({ REDIS_URL: shards.url, FANOUT_LOG_PARTITIONS: String(PARTITIONS), FANOUT_LOG_PREFIX: prefix });
    const elsewhere = await openUrl(`${other.base}/v1/events?${qs}`, { "Last-Event-ID": last });
    await elsewhere.waitMessages(missed.length);
    await sleep(100);
    expect(elsewhere.envelopes().map((e) => e.data).sort()).toEqual(missed.map((m) => m.data).sort());
  });
});

describe("the fleet view over shards", () => {
  const shards = redisShardsFixture(2);
  const { start } = relayFixture();

  it("reports the fullest shard's memory (its share of maxmemory)", async () => {
    await shards.clients[0].config("SET", "maxmemory", String(1024 * 1024 * 1024));
    await shards.clients[1].config("SET", "maxmemory", String(64 * 1024 * 1024));
    try {
      const r = await start({ REDIS_URL: shards.url, FANOUT_LOG_PARTITIONS: String(PARTITIONS), FANOUT_LOG_PREFIX: `mem${prefixes++}`, FANOUT_FLEET_HEARTBEAT_MS: "100" });
      let max = 0;
      for (let i = 0; i < 50 && max === 0; i++) {
        await sleep(100);
        const text = await (await fetch(`${r.base}/metrics`)).text();
        max = Number(/^fanout_redis_max_memory_bytes\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
      }
      expect(max).toBe(64 * 1024 * 1024);
    } finally {
      for (const c of shards.clients) await c.config("SET", "maxmemory", "0");
    }
  });
});

describe("one of two shards stopped and restarted under open streams", () => {
  // Append-only with fsync per write: the restarted shard has its log (and secrets) back.
  const shards = redisShardsFixture(2, ["--appendonly", "yes", "--appendfsync", "always"]);
  const { start, open } = relayFixture();

  it("keeps delivering the other shard, then catches up the restarted one from its log: nothing lost, nothing twice", async () => {
    const prefix = `down${prefixes++}`;
    const r = await start({ REDIS_URL: shards.url, FANOUT_LOG_PARTITIONS: String(PARTITIONS), FANOUT_LOG_PREFIX: prefix });
    const a = channelOnShard("k:a", 0, PARTITIONS, 2);
    const b = channelOnShard("k:b", 1, PARTITIONS, 2);
    const exact = await open(`channel=${encodeURIComponent(a)}&channel=${encodeURIComponent(b)}`);
    const pattern = await open("pattern=k:*");
    await Promise.all([exact.waitReady(), pattern.waitReady()]);
    const sent: Record<string, unknown[]> = { [a]: [], [b]: [] };
    const pub = async (channel: string, data: string) => {
      const res = await publish(r.base, { channel, data });
      if (res.status === 200) sent[channel].push(data);
      return res.status;
    };
    expect(await pub(a, "a0")).toBe(200);
    expect(await pub(b, "b0")).toBe(200);
    await Promise.all([exact.waitMessages(2), pattern.waitMessages(2)]);

    await shards.servers[1].stop();
    const broker = r.relay.context.broker;
    await exact.waitFor(() => !broker.isReady(), 5000, "the relay to see shard 1 down");
    expect(await pub(b, "b-lost")).toBe(503);
    const during = await (await fetch(`${r.base}/metrics`)).text();
    expect(/^fanout_redis_shard_ready\{[^}]*shard="0"[^}]*\} 1$/m.test(during)).toBe(true);
    expect(/^fanout_redis_shard_ready\{[^}]*shard="1"[^}]*\} 0$/m.test(during)).toBe(true);
    // A batch touching the down shard is refused before anything is written.
    expect(await pub(a, "a1")).toBe(200);
    const batch = await publish(r.base, { messages: [{ channel: a, data: "never" }, { channel: b, data: "never" }] });
    expect(batch.status).toBe(503);
    expect(batch.json.error.code).toBe("broker_unavailable");
    expect(await pub(a, "a2")).toBe(200);
    // Shard 0 keeps delivering while shard 1 is down.
    await Promise.all([exact.waitMessages(4), pattern.waitMessages(4)]);
    expect(exact.envelopes().map((e) => e.data)).toEqual(["a0", "b0", "a1", "a2"]);

    // Shard 1 comes back; another publisher (as the edge functions would) writes to it at
    // once, likely before this relay's subscriber is back: those arrive by catch-up.
    await shards.servers[1].start();
    const settings = { prefix, partitions: PARTITIONS, maxLen: 1000, ttlMs: 3_600_000, dedupeSeconds: 300 };
    for (let i = 1; i <= 5; i++) {
      const m = [{ channel: b, data: JSON.stringify(`b${i}`) }];
      const { keys, args } = publishScriptArgs(m, settings);
      for (let tries = 0; ; tries++) {
        try {
          await shards.clients[1].eval(PUBLISH_SCRIPT, keys.length, ...keys, ...args);
          break;
        } catch (err) {
          if (tries > 50) throw err;
          await sleep(50);
        }
      }
      sent[b].push(`b${i}`);
    }
    await exact.waitFor(() => broker.isReady(), 10_000, "the relay to see shard 1 back");
    expect(await pub(b, "b6")).toBe(200);
    expect(await pub(a, "a3")).toBe(200);

    const total = sent[a].length + sent[b].length;
    await Promise.all([exact.waitMessages(total, 10_000), pattern.waitMessages(total, 10_000)]);
    await sleep(200);
    for (const c of [exact, pattern]) {
      expect(byChannel(c)).toEqual(sent);
      const ids = c.envelopes().map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
    }
    const metrics = await (await fetch(`${r.base}/metrics`)).text();
    expect(Number(/^fanout_catchups_total\{[^}]*\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
  });
});

describe("a Sentinel-managed master as one shard beside a standalone server", () => {
  const standalone = redisShardsFixture(1);
  let sentinel: RedisSentinelSetup | undefined;
  beforeAll(async () => {
    sentinel = await RedisSentinelSetup.start("shardone");
  });
  afterAll(async () => {
    await sentinel?.dispose();
  });
  const { start, open } = relayFixture();

  it("delivers from both shards, and through a failover of the Sentinel shard", async () => {
    const r = await start({ REDIS_URL: `${standalone.url} ${sentinel!.url}`, FANOUT_LOG_PARTITIONS: String(PARTITIONS), FANOUT_LOG_PREFIX: `sen${prefixes++}` });
    const a = channelOnShard("f:a", 0, PARTITIONS, 2);
    const b = channelOnShard("f:b", 1, PARTITIONS, 2);
    const c = await open(`channel=${encodeURIComponent(a)}&pattern=f:b*`);
    await c.waitReady();
    expect((await publish(r.base, { channel: a, data: "a1" })).status).toBe(200);
    expect((await publish(r.base, { channel: b, data: "b1" })).status).toBe(200);
    await c.waitMessages(2);

    await sentinel!.failover();
    // The standalone shard is untouched by the other's failover.
    expect((await publish(r.base, { channel: a, data: "a2" })).status).toBe(200);
    await c.waitMessages(3);
    // Publishes to the failed-over shard succeed again once the relay follows the new master.
    for (let tries = 0; ; tries++) {
      const res = await publish(r.base, { channel: b, data: "b2", id: "b2" });
      if (res.status === 200) break;
      expect(res.status).toBe(503);
      if (tries > 100) throw new Error("the Sentinel shard did not come back");
      await sleep(100);
    }
    await c.waitMessages(4, 10_000);
    await sleep(200);
    expect(byChannel(c)).toEqual({ [a]: ["a1", "a2"], [b]: ["b1", "b2"] });
  });
});

describe("a relay started while one shard is down", () => {
  const up = redisShardsFixture(1);
  const { start, open } = relayFixture();

  it("refuses streams until the shard is up, then delivers from both shards live", async () => {
    const down = new RedisServer(await freePort());
    try {
      const r = await start({ REDIS_URL: `${up.url} ${down.url}`, FANOUT_LOG_PARTITIONS: String(PARTITIONS), FANOUT_LOG_PREFIX: `late${prefixes++}` });
      expect((await fetch(`${r.base}/readyz`)).status).toBe(503);
      await down.start();
      const a = channelOnShard("l:a", 0, PARTITIONS, 2);
      const b = channelOnShard("l:b", 1, PARTITIONS, 2);
      let c: SseClient | undefined;
      for (let i = 0; i < 100 && !c; i++) {
        const s = await open(`channel=${encodeURIComponent(a)}&channel=${encodeURIComponent(b)}`);
        if (s.status === 200) c = s;
        else await sleep(100);
      }
      await c!.waitReady();
      expect((await publish(r.base, { channel: a, data: "a" })).status).toBe(200);
      expect((await publish(r.base, { channel: b, data: "b" })).status).toBe(200);
      await c!.waitMessages(2);
      expect(byChannel(c!)).toEqual({ [a]: ["a"], [b]: ["b"] });
    } finally {
      await down.dispose();
    }
  });
});
