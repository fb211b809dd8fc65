import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { FanoutError } from "../../protocol/errors.js";
import { partitionOf, streamKey } from "../../protocol/partition.js";
import type { PublishMessage, PublishResult } from "../../protocol/publish-request.js";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { RedisCluster } from "../../test/support/redis-cluster.js";
import { RedisServer } from "../../test/support/redis-server.js";
import { RedisBroker } from "./redis-broker.js";
import type { PublishReplicas } from "./replicated-publish.js";

/**
 * Group commit (group-commit.ts): publishes made in the same event-loop turn share one
 * pipeline to Redis, and each keeps its own result, error and order.
 */

const PARTITIONS = 8;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = { deliver: () => undefined, down: () => undefined, recovered: () => undefined, fault: () => undefined };

/** A channel `<base>-<n>` in partition `p`. */
function channelIn(p: number, base: string): string {
  for (let n = 0; ; n++) if (partitionOf(`${base}-${n}`, PARTITIONS) === p) return `${base}-${n}`;
}

type Outcome = { ok: true; results: PublishResult[] } | { ok: false; err: unknown };
/** Starts every publish in this turn (so they are grouped) and collects each outcome. */
function together(b: RedisBroker, requests: PublishMessage[][]): Promise<Outcome[]> {
  return Promise.all(requests.map((m) => b.publish(m).then((results): Outcome => ({ ok: true, results }), (err): Outcome => ({ ok: false, err }))));
}

async function readsProcessed(cli: Redis): Promise<number> {
  return Number(/total_reads_processed:(\d+)/.exec(await cli.info("stats"))![1]);
}

const brokers: RedisBroker[] = [];
async function broker(url: string, prefix: string, replicas?: PublishReplicas): Promise<RedisBroker> {
  const b = new RedisBroker(url, { prefix, partitions: PARTITIONS, maxLen: 1000, ttlMs: 0, dedupeSeconds: 60 }, undefined, "classic", replicas);
  brokers.push(b);
  await b.start(quiet);
  return b;
}
afterEach(async () => {
  for (const b of brokers.splice(0)) await b.close();
});

describe("group commit on one Redis", () => {
  let server: RedisServer;
  let cli: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    cli = new Redis(server.port, "127.0.0.1");
  });
  afterAll(async () => {
    cli.disconnect();
    await server.dispose();
  });

  it("gives each of the turn's publishes its own ids and duplicate flags, in one pipeline", async () => {
    const b = await broker(server.url, "gc1");
    const first = await b.publish([{ channel: "g:a", data: "1", id: "a-1" }]);
    const before = await readsProcessed(cli);
    const out = await together(b, [
      [{ channel: "g:a", data: "1", id: "a-1" }], // a retry: the first result back
      [{ channel: "g:b", data: "2" }],
      [
        { channel: "g:c", data: "3", id: "c-1" },
        { channel: "g:d", data: "4" },
      ],
      [{ channel: "g:c", data: "3", id: "c-1" }], // a retry of the request just before, same turn
      [{ channel: "g:a", data: "5", id: "a-2" }],
      [{ channel: "g:e", data: "6" }],
      [{ channel: "g:f", data: "7" }],
      [{ channel: "g:g", data: "8" }],
    ]);
    const reads = (await readsProcessed(cli)) - before;
    const results = out.map((o) => (o.ok ? o.results : o.err));
    expect(results.every((r) => Array.isArray(r))).toBe(true);
    const [retry, b1, batch, retry2, a2, ...rest] = results as PublishResult[][];
    expect(retry).toEqual([{ ...first[0], duplicate: true }]);
    expect(b1[0]).toMatchObject({ channel: "g:b", duplicate: false });
    expect(batch.map((r) => [r.channel, r.duplicate])).toEqual([
      ["g:c", false],
      ["g:d", false],
    ]);
    expect(retry2).toEqual([{ ...batch[0], duplicate: true }]);
    expect(a2[0]).toMatchObject({ channel: "g:a", duplicate: false });
    expect(a2[0].id).not.toBe(first[0].id);
    expect(rest.map((r) => r[0].channel)).toEqual(["g:e", "g:f", "g:g"]);
    // Ids are distinct log positions.
    const ids = [b1, batch, a2, ...rest].flat().map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    // Eight requests, one pipeline: Redis read them in one go (plus this INFO), not eight times.
    expect(reads).toBeLessThanOrEqual(3);
  });

  it("fails only the request whose script call failed; the others in its group are published", async () => {
    const b = await broker(server.url, "gc2");
    const bad = channelIn(3, "bad");
    // Something that is not a stream where partition 3's log lives: its script call errors.
    await cli.set(streamKey("gc2", 3), "not a stream");
    const goods = [0, 1, 2, 4, 5].map((p) => channelIn(p, "good"));
    const out = await together(b, [
      [{ channel: goods[0], data: "0" }],
      [{ channel: bad, data: "x" }],
      ...goods.slice(1).map((c, i) => [{ channel: c, data: String(i + 1) }]),
      // A batch is one request: its message on the broken partition fails all of it.
      [
        { channel: channelIn(7, "batch"), data: "y" },
        { channel: bad, data: "z" },
      ],
    ]);
    for (const failed of [out[1], out[6]]) {
      expect(failed.ok).toBe(false);
      const err = (failed as { err: unknown }).err;
      expect(err).toBeInstanceOf(FanoutError);
      expect((err as FanoutError).status).toBe(503);
    }
    const good = [out[0], ...out.slice(2, 6)];
    expect(good.every((o) => o.ok)).toBe(true);
    for (const [i, o] of good.entries()) {
      const [r] = (o as { results: PublishResult[] }).results;
      expect(r.channel).toBe(goods[i]);
      const [p, ms, seq] = r.id.split("-");
      const rows = await cli.xrange(streamKey("gc2", Number(p)), `${ms}-${seq}`, `${ms}-${seq}`);
      expect(rows[0][1]).toContain(String(i));
    }
  });

  it("keeps a channel's order: requests made in one turn are logged and answered in the order made", async () => {
    const b = await broker(server.url, "gc3");
    const done: number[] = [];
    const out = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        b.publish([{ channel: `o:${i % 4}`, data: String(i) }]).then((r) => {
          done.push(i);
          return r[0];
        }),
      ),
    );
    expect(done).toEqual(Array.from({ length: 40 }, (_, i) => i));
    for (let c = 0; c < 4; c++) {
      const mine = out.filter((r) => r.channel === `o:${c}`);
      const p = partitionOf(`o:${c}`, PARTITIONS);
      const logged = (await cli.xrange(streamKey("gc3", p), "-", "+")).filter(([, f]) => f[1] === `o:${c}`);
      expect(logged.map(([sid]) => `${p}-${sid}`)).toEqual(mine.map((r) => r.id));
      expect(logged.map(([, f]) => Number(f[3]))).toEqual(Array.from({ length: 10 }, (_, k) => c + 4 * k));
    }
  });
});

describe("group commit on Redis Cluster", () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
  }, 30_000);
  afterAll(async () => {
    await cluster.dispose();
  });

  it("groups per partition: each publish of the turn gets its own result, a channel's in order", async () => {
    const b = await broker(cluster.url, "gc8");
    const first = await b.publish([{ channel: "k:0", data: "0", id: "k-0" }]);
    const requests: PublishMessage[][] = Array.from({ length: 24 }, (_, i) => [{ channel: `k:${i % 6}`, data: String(i) }]);
    requests.push([{ channel: "k:0", data: "0", id: "k-0" }]);
    requests.push([
      { channel: "k:1", data: "b1" },
      { channel: "k:2", data: "b2" },
    ]);
    const out = await together(b, requests);
    expect(out.every((o) => o.ok)).toBe(true);
    const res = out.map((o) => (o as { results: PublishResult[] }).results);
    expect(res[24]).toEqual([{ ...first[0], duplicate: true }]);
    expect(res[25].map((r) => r.channel)).toEqual(["k:1", "k:2"]);
    const pos = (id: string) => id.split("-").slice(1).map(Number);
    const before = (a: string, c: string) => pos(a)[0] < pos(c)[0] || (pos(a)[0] === pos(c)[0] && pos(a)[1] < pos(c)[1]);
    for (let ch = 0; ch < 6; ch++) {
      const ids = res.slice(0, 24).filter((_, i) => i % 6 === ch).map((r) => r[0].id);
      for (let k = 1; k < ids.length; k++) expect(before(ids[k - 1], ids[k])).toBe(true);
    }
  });
});

describe("group commit when Redis goes away", () => {
  it("fails the group in flight with 503, and only it: the groups before and after are published", async () => {
    const server = await RedisServer.start();
    try {
      const b = await broker(server.url, "gc4");
      const before = await together(b, [0, 1, 2, 3].map((i) => [{ channel: `d:${i}`, data: String(i) }]));
      expect(before.every((o) => o.ok)).toBe(true);
      // The group is sent and waits (writes paused); then Redis dies before answering it.
      const admin = new Redis(server.port, "127.0.0.1");
      await admin.client("PAUSE", 10_000, "WRITE");
      admin.disconnect();
      const inFlight = together(b, [0, 1, 2, 3].map((i) => [{ channel: `d:${i}`, data: `lost ${i}` }]));
      await sleep(100);
      await server.stop();
      const lost = await inFlight;
      for (const o of lost) {
        expect(o.ok).toBe(false);
        expect(((o as { err: unknown }).err as FanoutError).status).toBe(503);
      }
      await server.start();
      for (let i = 0; i < 100 && !b.isReady(); i++) await sleep(50);
      const after = await together(b, [0, 1, 2, 3].map((i) => [{ channel: `d:${i}`, data: `after ${i}` }]));
      expect(after.every((o) => o.ok)).toBe(true);
    } finally {
      await server.dispose();
    }
  });
});

describe("group commit with FANOUT_PUBLISH_REPLICAS", () => {
  let master: RedisServer;
  let replica: RedisServer;
  let onReplica: Redis;
  beforeAll(async () => {
    master = await RedisServer.start();
    replica = await RedisServer.start(["--replicaof", "127.0.0.1", String(master.port)]);
    onReplica = new Redis(replica.port, "127.0.0.1");
    for (let i = 0; i < 100 && !/master_link_status:up/.test(await onReplica.info("replication")); i++) await sleep(50);
  }, 20_000);
  afterAll(async () => {
    onReplica.disconnect();
    await replica.dispose();
    await master.dispose();
  });

  it("answers each grouped publish only once the replica holds it, and each failure on its own", async () => {
    const b = await broker(master.url, "gc5", { count: 1, timeoutMs: 5000 });
    const cli = new Redis(master.port, "127.0.0.1");
    await cli.set(streamKey("gc5", 6), "not a stream");
    cli.disconnect();
    const bad = channelIn(6, "bad");
    const out = await together(b, [...[0, 1, 2, 3, 4].map((p) => [{ channel: channelIn(p, "r"), data: String(p) }]), [{ channel: bad, data: "x" }]]);
    expect(out[5].ok).toBe(false);
    expect(((out[5] as { err: unknown }).err as FanoutError).status).toBe(503);
    for (const o of out.slice(0, 5)) {
      expect(o.ok).toBe(true);
      const [r] = (o as { results: PublishResult[] }).results;
      const [p, ms, seq] = r.id.split("-");
      // Read from the replica at once: each 200 came after its acknowledgement.
      expect(await onReplica.xrange(streamKey("gc5", Number(p)), `${ms}-${seq}`, `${ms}-${seq}`)).toHaveLength(1);
    }
  });

  it("answers every publish of a group not_replicated when the replica does not confirm, and a retry gets the first result", async () => {
    const b = await broker(master.url, "gc6", { count: 1, timeoutMs: 200 });
    await onReplica.client("PAUSE", 1500, "ALL");
    const out = await together(b, [0, 1, 2].map((i) => [{ channel: `n:${i}`, data: String(i), id: `n-${i}` }]));
    for (const o of out) {
      expect(o.ok).toBe(false);
      expect(((o as { err: unknown }).err as FanoutError).code).toBe("not_replicated");
    }
    await sleep(1600);
    let again: Outcome[] = [];
    for (let i = 0; i < 50; i++) {
      again = await together(b, [0, 1, 2].map((i) => [{ channel: `n:${i}`, data: String(i), id: `n-${i}` }]));
      if (again.every((o) => o.ok)) break;
      await sleep(100);
    }
    for (const o of again) expect((o as { results: PublishResult[] }).results[0].duplicate).toBe(true);
  });
});

describe("group commit through the relay", () => {
  let server: RedisServer;
  let r: RunningRelay;
  const clients: SseClient[] = [];
  beforeAll(async () => {
    server = await RedisServer.start();
    r = await startRelay({ REDIS_URL: server.url, FANOUT_LOG_PARTITIONS: String(PARTITIONS), FANOUT_LOG_PREFIX: "gc7" });
  });
  afterAll(async () => {
    clients.forEach((c) => c.close());
    await r.stop();
    await server.dispose();
  });

  it("8 concurrent publishers: every message delivered once, each publisher's sequence in order per channel", async () => {
    const channels = ["s:0", "s:1", "s:2", "s:3"];
    const c = await SseClient.open(`${r.base}/v1/events?${channels.map((ch) => `channel=${ch}`).join("&")}`);
    clients.push(c);
    await c.waitReady();
    const PER = 40;
    await Promise.all(
      Array.from({ length: 8 }, async (_, p) => {
        for (let i = 0; i < PER; i++) {
          const res = await publish(r.base, { channel: channels[p % 4], data: { p, i } });
          expect(res.status, JSON.stringify(res.json)).toBe(200);
        }
      }),
    );
    await c.waitMessages(8 * PER, 10_000);
    const got = c.envelopes();
    expect(got).toHaveLength(8 * PER);
    for (const ch of channels) {
      const mine = got.filter((e) => e.channel === ch);
      // Log order on the channel is delivery order.
      const ids = mine.map((e) => e.id.split("-").slice(1).map(Number));
      for (let k = 1; k < ids.length; k++) expect(ids[k][0] > ids[k - 1][0] || (ids[k][0] === ids[k - 1][0] && ids[k][1] > ids[k - 1][1])).toBe(true);
      for (let p = 0; p < 8; p++) {
        const seq = mine.map((e) => e.data as { p: number; i: number }).filter((d) => d.p === p).map((d) => d.i);
        if (p % 4 === channels.indexOf(ch)) expect(seq).toEqual(Array.from({ length: PER }, (_, i) => i));
        else expect(seq).toEqual([]);
      }
    }
  });
});
