import { describe, expect, inject, it } from "vitest";
import { partitionOf, streamKey } from "../protocol/partition.js";
import { shardOfPartition } from "../protocol/shard-map.js";
import { call, openSse, testEnv, uniq, type SseEvent } from "./test/helpers.js";

const PARTITIONS = 16;
// Shard 0 first, a token per URL, the same order as the relay's REDIS_URL.
const env = testEnv({
  UPSTASH_REDIS_REST_URL: inject("shardRestUrls").join(" "),
  UPSTASH_REDIS_REST_TOKEN: `${inject("restToken")} ${inject("restToken")}`,
  FANOUT_LOG_PREFIX: inject("relayLogPrefix"),
  FANOUT_LOG_PARTITIONS: String(PARTITIONS),
});

const shardOf = (channel: string) => shardOfPartition(partitionOf(channel, PARTITIONS), 2);

/** A unique channel whose partition lives on `shard`. */
function channelOn(shard: number, stem: string): string {
  for (;;) {
    const ch = uniq(stem);
    if (shardOf(ch) === shard) return ch;
  }
}

/** One command on shard `s`'s REST server. */
async function onShard(s: number, ...cmd: (string | number)[]): Promise<any> {
  const res = await fetch(inject("shardRestUrls")[s], { method: "POST", headers: { authorization: `Bearer ${inject("restToken")}` }, body: JSON.stringify(cmd) });
  const out = (await res.json()) as { result?: unknown; error?: string };
  if (out.error) throw new Error(out.error);
  return out.result;
}

/** Channels of the entries in `channel`'s partition on shard `s`. */
async function channelsLogged(s: number, channel: string): Promise<string[]> {
  const rows = (await onShard(s, "XRANGE", streamKey(env.FANOUT_LOG_PREFIX, partitionOf(channel, PARTITIONS)), "-", "+")) as [string, string[]][];
  // Only this channel: other tests' channels may share its partition.
  return rows.map(([, kv]) => kv[kv.indexOf("c") + 1]).filter((c) => c === channel);
}

async function nextMessage(sse: { next(t?: number): Promise<SseEvent> }): Promise<SseEvent> {
  for (;;) {
    const ev = await sse.next();
    if (ev.event !== "ready" && ev.event !== "reset" && ev.id !== undefined) return ev;
  }
}

describe("edge functions publishing to a log sharded over two Redis (two REST endpoints)", () => {
  it("refuses a token list that does not match the URL list", async () => {
    const bad = await call({ ...env, UPSTASH_REDIS_REST_TOKEN: inject("restToken") }, "/v1/publish", { body: { channel: "a", data: 1 } });
    expect(bad.status).toBe(500);
    expect(bad.json.error.code).toBe("misconfigured");
    expect(bad.json.error.message).toMatch(/one token per UPSTASH_REDIS_REST_URL entry/);
  });

  it("refuses a batch touching a shard whose circuit breaker is open, writing nothing on the other", async () => {
    const down = { ...env, UPSTASH_REDIS_REST_URL: `${inject("shardRestUrls")[0]} ${inject("deadUrl")}`, FANOUT_BREAKER_THRESHOLD: "1" };
    const a = channelOn(0, "edge:da");
    const b = channelOn(1, "edge:db");
    expect((await call(down, "/v1/publish", { body: { channel: b, data: 1 } })).status).toBe(503);
    const batch = await call(down, "/v1/publish", { body: { messages: [{ channel: a, data: 1 }, { channel: b, data: 2 }] } });
    expect(batch.status).toBe(503);
    expect(batch.json.error.code).toBe("broker_unavailable");
    expect(await channelsLogged(0, a)).toEqual([]);
    // The healthy shard still takes its own channels.
    expect((await call(down, "/v1/publish", { body: { channel: a, data: 3 } })).status).toBe(200);
    expect(await channelsLogged(0, a)).toEqual([a]);
  });

  it("mints tickets on shard 0, where a relay on the same shards takes them", async () => {
    const relay = inject("shardedRelayUrl");
    expect(relay, `the sharded relay did not start: ${inject("shardedRelayError")}`).not.toBe("");
    const channel = channelOn(1, "edge:t");
    const minted = await call(env, "/v1/tickets", { body: { channels: [channel] } });
    expect(minted.status).toBe(200);
    const sse = await openSse(`${relay}/v1/events?channel=${encodeURIComponent(channel)}&ticket=${encodeURIComponent(minted.json.ticket)}`);
    try {
      let ev: SseEvent;
      do ev = await sse.next();
      while (ev.event !== "ready");
      const p = await call(env, "/v1/publish", { body: { channel, data: "t" } });
      expect(JSON.parse((await nextMessage(sse)).data)).toMatchObject({ id: p.json.id, channel, data: "t" });
    } finally {
      sse.close();
    }
    // Taken (single use): the relay found it where the edge put it.
    const reused = await fetch(`${relay}/v1/events?channel=${encodeURIComponent(channel)}&ticket=${encodeURIComponent(minted.json.ticket)}`);
    expect(reused.status).toBe(401);
    await reused.body?.cancel();
    const bogus = await fetch(`${relay}/v1/events?channel=${encodeURIComponent(channel)}&ticket=${encodeURIComponent(`${minted.json.ticket}x`)}`);
    expect(bogus.status).toBe(401);
    await bogus.body?.cancel();
  });

  it("writes each message, single or in a batch, to its channel's shard, which a relay on the same shards delivers", async () => {
    const relay = inject("shardedRelayUrl");
    expect(relay, `the sharded relay did not start: ${inject("shardedRelayError")}`).not.toBe("");
    const a = channelOn(0, "edge:a");
    const b = channelOn(1, "edge:b");
    const sse = await openSse(`${relay}/v1/events?channel=${encodeURIComponent(a)}&channel=${encodeURIComponent(b)}`);
    try {
      let ev: SseEvent;
      do ev = await sse.next();
      while (ev.event !== "ready");
      const one = await call(env, "/v1/publish", { body: { channel: b, data: "b1" } });
      expect(one.status).toBe(200);
      const batch = await call(env, "/v1/publish", { body: { messages: [{ channel: a, data: "a1" }, { channel: b, data: "b2" }, { channel: a, data: "a2" }] } });
      expect(batch.status).toBe(200);
      expect(batch.json.results.map((r: { channel: string }) => r.channel)).toEqual([a, b, a]);
      // The relay holds both channels, each on its own shard: one receiver each.
      expect([one.json, ...batch.json.results].map((r: { receivers: number }) => r.receivers)).toEqual([1, 1, 1, 1]);

      expect(await channelsLogged(0, a)).toEqual([a, a]);
      expect(await channelsLogged(1, a)).toEqual([]);
      expect(await channelsLogged(1, b)).toEqual([b, b]);
      expect(await channelsLogged(0, b)).toEqual([]);

      const got: Record<string, unknown[]> = {};
      for (let i = 0; i < 4; i++) {
        const m = JSON.parse((await nextMessage(sse)).data) as { channel: string; data: unknown };
        (got[m.channel] ??= []).push(m.data);
      }
      expect(got).toEqual({ [a]: ["a1", "a2"], [b]: ["b1", "b2"] });
    } finally {
      sse.close();
    }
  });
});
