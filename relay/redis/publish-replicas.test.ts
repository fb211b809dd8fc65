import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { RedisCluster, RedisSentinelSetup, redisCli } from "../../test/support/redis-cluster.js";
import { channelOnShard } from "../../test/support/redis-shards.js";
import { RedisServer } from "../../test/support/redis-server.js";
import { partitionOf, streamKey } from "../../protocol/partition.js";

/**
 * FANOUT_PUBLISH_REPLICAS ("acknowledged means durable") on a real Sentinel setup: one
 * master, one replica, one sentinel. Each test that breaks its setup has its own.
 */

const PARTITIONS = 8;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every log entry of `channel` on the server at `port`: message id → data. */
async function logged(port: number, prefix: string, channel: string): Promise<Map<string, unknown>> {
  const p = partitionOf(channel, PARTITIONS);
  const redis = new Redis(port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const rows = (await redis.xrange(streamKey(prefix, p), "-", "+")) as [string, string[]][];
    const out = new Map<string, unknown>();
    for (const [sid, fields] of rows) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
      if (f.c === channel) out.set(`${p}-${sid}`, JSON.parse(f.d));
    }
    return out;
  } finally {
    redis.disconnect();
  }
}

async function until(pred: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await pred()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const relays: RunningRelay[] = [];
const clients: SseClient[] = [];
const setups: RedisSentinelSetup[] = [];
const start = async (url: string, env: Record<string, string>) => {
  const r = await startRelay({ REDIS_URL: url, FANOUT_LOG_PARTITIONS: String(PARTITIONS), ...env });
  relays.push(r);
  return r;
};
const open = async (r: RunningRelay, qs: string) => {
  const c = await SseClient.open(`${r.base}/v1/events?${qs}`);
  clients.push(c);
  expect(c.status, c.body).toBe(200);
  await c.waitReady();
  return c;
};
const sentinel = async () => {
  const s = await RedisSentinelSetup.start();
  setups.push(s);
  return s;
};
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  for (const r of relays.splice(0)) await r.stop();
});
afterAll(async () => {
  await Promise.all(setups.map((s) => s.dispose()));
});

describe("FANOUT_PUBLISH_REPLICAS on Sentinel", () => {
  let shared: RedisSentinelSetup;
  beforeAll(async () => {
    shared = await sentinel();
  }, 30_000);

  it("answers 200 only once the replica holds the message", async () => {
    const r = await start(shared.url, { FANOUT_LOG_PREFIX: "rep1", FANOUT_PUBLISH_REPLICAS: "1", FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS: "5000" });
    const c = await open(r, "channel=rep:a");
    for (let i = 0; i < 20; i++) {
      const res = await publish(r.base, { channel: "rep:a", data: i });
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      // Read from the replica at once, without waiting: the 200 came after its acknowledgement.
      expect((await logged(shared.replicaPort, "rep1", "rep:a")).get(res.json.id)).toBe(i);
    }
    await c.waitMessages(20);
    expect(c.envelopes().map((e) => e.data)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it("answers 503 not_replicated after the timeout when fewer replicas confirm; the message is in the master's log, and a retry with its id writes nothing twice", async () => {
    const r = await start(shared.url, { FANOUT_LOG_PREFIX: "rep2", FANOUT_PUBLISH_REPLICAS: "2", FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS: "200" });
    const c = await open(r, "channel=rep:b");
    const t0 = Date.now();
    const first = await publish(r.base, { channel: "rep:b", data: "maybe", id: "evt-1" });
    const waited = Date.now() - t0;
    expect(first.status).toBe(503);
    expect(first.json.error.code).toBe("not_replicated");
    expect(Number(first.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // It waited for the replicas (WAIT's timeout) before giving up.
    expect(waited).toBeGreaterThanOrEqual(200);
    // "Maybe published": the script ran, so the master's log has it and subscribers got it live.
    const master = await shared.currentMasterPort();
    expect([...(await logged(master, "rep2", "rep:b")).values()]).toEqual(["maybe"]);
    await c.waitMessages(1);
    // The retry finds the id: no second entry, no second delivery (still 503: one replica only).
    const again = await publish(r.base, { channel: "rep:b", data: "maybe", id: "evt-1" });
    expect(again.status).toBe(503);
    expect(again.json.error.code).toBe("not_replicated");
    expect([...(await logged(master, "rep2", "rep:b")).values()]).toEqual(["maybe"]);
    await sleep(200);
    expect(c.envelopes().map((e) => e.data)).toEqual(["maybe"]);
    // Operators see them among the refusals.
    expect(await (await fetch(`${r.base}/metrics`)).text()).toMatch(/fanout_rejected_total\{[^}]*code="not_replicated"[^}]*\} 2\b/);
  });

  it("does not confirm a retry that finds its id while the first publish is still unreplicated, even through another relay", async () => {
    const a = await start(shared.url, { FANOUT_LOG_PREFIX: "rep8", FANOUT_PUBLISH_REPLICAS: "1", FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS: "200" });
    // b waits longer than a: time for a confirmation of b's own earlier writes to arrive, which
    // must not count as one of the first publish.
    const b = await start(shared.url, { FANOUT_LOG_PREFIX: "rep8", FANOUT_PUBLISH_REPLICAS: "1", FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS: "1500" });
    const master = await shared.currentMasterPort();
    const replica = master === shared.masterPort ? shared.replicaPort : shared.masterPort;
    // The replica has acknowledged everything so far (b's start-up writes included).
    await until(async () => {
      const info = await redisCli(master, ["INFO", "replication"]);
      const acked = /slave0:.*offset=(\d+)/.exec(info)?.[1];
      return acked !== undefined && acked === /master_repl_offset:(\d+)/.exec(info)?.[1];
    }, 5000, "the replica's acknowledgement");
    expect(await redisCli(replica, ["CLIENT", "PAUSE", "3000", "ALL"])).toMatch(/OK/);
    const first = await publish(a.base, { channel: "rep:r", data: "x", id: "r-1" });
    expect(first.json.error.code).toBe("not_replicated");
    // Relay b's connection wrote nothing since. WAIT is documented to cover "the previous write
    // commands sent in the context of the current connection", so the retry's script writes
    // (it rewrites the id's key unchanged) to make its WAIT cover the first publish too.
    // (Redis 7.0.15, used here, already waits for the global offset after any command, so
    // this test passes there without that write as well.)
    const retry = await publish(b.base, { channel: "rep:r", data: "x", id: "r-1" });
    expect(retry.status).toBe(503);
    expect(retry.json.error.code).toBe("not_replicated");
    // Once the replica has caught up, the retry is confirmed with the first result.
    await until(async () => (await publish(b.base, { channel: "rep:r", data: "x", id: "r-1" })).status === 200, 10_000, "the retry confirmed");
    const done = await publish(b.base, { channel: "rep:r", data: "x", id: "r-1" });
    expect(done.json.duplicate).toBe(true);
    expect([...(await logged(replica, "rep8", "rep:r")).values()]).toEqual(["x"]);
  });

  it("loses no acknowledged publish in a failover under a steady stream: each 200 is in the new master's log and delivered once", async () => {
    await failoverUnderStream(shared, "rep3", 1);
  }, 60_000);

});

/**
 * A steady publish stream with ids and retries through a SENTINEL FAILOVER, with
 * FANOUT_PUBLISH_REPLICAS = `replicas`, every replica of the setup. (N below the number of
 * replicas is not safe: run once with two replicas and N=1, a SENTINEL FAILOVER lost 31
 * publishes answered 200 — the old master kept taking writes, confirmed by the replica not
 * yet repointed, until the relay's connection moved. With two replicas and N=2 none was lost,
 * and publishes were confirmed again 20 s after the failover; that run is not kept here, it
 * takes 40 s.)
 */
async function failoverUnderStream(s: RedisSentinelSetup, prefix: string, replicas: number): Promise<void> {
  const r = await start(s.url, { FANOUT_LOG_PREFIX: prefix, FANOUT_PUBLISH_REPLICAS: String(replicas), FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS: "300" });
  const c = await open(r, "channel=rep:live");
  const oldMaster = await s.currentMasterPort();

  // The publisher of the documented contract: every message has an idempotency id and is
  // retried with it until it gets a 200 (here after 100 ms instead of Retry-After, to keep
  // the test short).
  let stop = false;
  const accepted = new Map<number, string>(); // data → message id answered 200
  const refusals = new Map<string, number>();
  const t0 = Date.now();
  let failedOverAt = Infinity;
  let acceptedAfterFailover = 0;
  let firstAcceptedAfter = NaN;
  const publisher = (async () => {
    for (let i = 0; !stop; i++) {
      for (;;) {
        const res = await publish(r.base, { channel: "rep:live", data: i, id: `m-${i}` });
        if (res.status === 200) {
          accepted.set(i, res.json.id);
          if (Date.now() - t0 > failedOverAt && acceptedAfterFailover++ === 0) firstAcceptedAfter = Date.now() - t0 - failedOverAt;
          break;
        }
        expect(res.status).toBe(503);
        expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
        refusals.set(res.json.error.code, (refusals.get(res.json.error.code) ?? 0) + 1);
        await sleep(100);
      }
      await sleep(10);
    }
  })();
  await until(() => accepted.size >= 20, 10_000, "publishes before the failover");
  const newMaster = await s.failover();
  expect(newMaster).not.toBe(oldMaster);
  failedOverAt = Date.now() - t0;
  await until(() => acceptedAfterFailover >= 10, 20_000, "publishes accepted after the failover");
  stop = true;
  await publisher;

  // Every publish answered 200 is in the new master's log, under the id it was answered with.
  const log = await logged(newMaster, prefix, "rep:live");
  const lost = [...accepted].filter(([data, id]) => log.get(id) !== data);
  expect(lost).toEqual([]);
  // ... and reaches the connected client exactly once.
  const ids = [...accepted.values()];
  await c.waitFor((x) => ids.every((id) => x.envelopes().some((e) => e.id === id)), 15_000, "every accepted publish");
  await sleep(300);
  const seen = c.envelopes().map((e) => e.id);
  expect(seen.length).toBe(new Set(seen).size);
  for (const id of ids) expect(seen.filter((s) => s === id)).toHaveLength(1);
  expect(c.closed).toBe(false);
  // A message answered 503 may have been delivered live before the failover lost it; its
  // retry is then a new message with a new id. Counted here, documented in protocol.md.
  const byData = new Map<unknown, number>();
  for (const e of c.envelopes()) byData.set(e.data, (byData.get(e.data) ?? 0) + 1);
  const seenTwice = [...byData.values()].filter((n) => n > 1).length;
  console.log(
    `publish replicas failover (${replicas} replica${replicas > 1 ? "s" : ""}): ${accepted.size} accepted, refusals ${JSON.stringify(Object.fromEntries(refusals))}, ` +
      `${lost.length} accepted but lost, ${seenTwice} payloads delivered under two ids (a 503'd copy, then its retry); ` +
      `first 200 ${firstAcceptedAfter} ms after Sentinel named the new master (until the demoted master resyncs as its replica)`,
  );
  }

describe("why it exists: an acknowledged publish lost in a failover", () => {
  it("without the setting a 200 can vanish with the master; with it the same publish answers 503 and its retry lands on the new master", async () => {
    const s = await sentinel();
    const prefix = "rep4";
    const plain = await start(s.url, { FANOUT_LOG_PREFIX: prefix });
    const durable = await start(s.url, { FANOUT_LOG_PREFIX: prefix, FANOUT_PUBLISH_REPLICAS: "1", FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS: "300" });
    const c = await open(plain, "channel=rep:d");
    expect((await publish(plain.base, { channel: "rep:d", data: "warm" })).status).toBe(200);
    await until(async () => [...(await logged(s.replicaPort, prefix, "rep:d")).values()].includes("warm"), 5000, "the replica in sync");

    // The replica stops applying its master's stream (CLIENT PAUSE ALL pauses the replication
    // link too): what the master writes now exists only on the master.
    expect(await redisCli(s.replicaPort, ["CLIENT", "PAUSE", "1500", "ALL"])).toMatch(/OK/);
    const acked = await publish(plain.base, { channel: "rep:d", data: "acked", id: "a-1" });
    expect(acked.status).toBe(200);
    const refused = await publish(durable.base, { channel: "rep:d", data: "refused", id: "d-1" });
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe("not_replicated");
    // The master dies before the replica applies them; Sentinel promotes the replica.
    await s.kill(s.masterPort);
    const killedAt = Date.now();
    await until(async () => (await s.currentMasterPort()) === s.replicaPort && /role:master/.test(await redisCli(s.replicaPort, ["INFO", "replication"])), 30_000, "the replica promoted");

    console.log(`replica promoted ${Date.now() - killedAt} ms after the master was killed`);
    // The 200 is gone: it was never on the replica. The client saw it live, but no resume can
    // replay it.
    const log = await logged(s.replicaPort, prefix, "rep:d");
    expect([...log.values()]).toEqual(["warm"]);
    await c.waitFor((x) => x.envelopes().some((e) => e.data === "acked"), 5000, "the lost message, live");
    // The refused one is retried with its id. The new master has no replica yet, so no
    // publish can be confirmed: the retry writes the message (the old copy died with the old
    // master) and still answers not_replicated, rather than a 200 a second failure could undo.
    let early: Awaited<ReturnType<typeof publish>> | undefined;
    // (broker_unavailable until the relay's connection has moved to the new master)
    await until(async () => (early = await publish(durable.base, { channel: "rep:d", data: "refused", id: "d-1" })).json?.error?.code !== "broker_unavailable", 10_000, "the relay on the new master");
    expect(early!.status).toBe(503);
    expect(early!.json.error.code).toBe("not_replicated");
    const written = [...(await logged(s.replicaPort, prefix, "rep:d"))].filter(([, d]) => d === "refused");
    expect(written).toHaveLength(1);
    // A new replica joins: the next retry is confirmed and answers 200 with the first result.
    const replica = await RedisServer.start(["--replicaof", "127.0.0.1", String(s.replicaPort)]);
    try {
      let retried: Awaited<ReturnType<typeof publish>> | undefined;
      await until(async () => (retried = await publish(durable.base, { channel: "rep:d", data: "refused", id: "d-1" })).status === 200, 20_000, "the retry accepted");
      expect(retried!.json).toMatchObject({ id: written[0][0], duplicate: true });
      expect((await logged(replica.port, prefix, "rep:d")).get(written[0][0])).toBe("refused");
      await c.waitFor((x) => x.envelopes().some((e) => e.id === written[0][0]), 10_000, "the retried message");
    } finally {
      await replica.dispose();
    }
  }, 60_000);
});

describe("FANOUT_PUBLISH_REPLICAS where the script ran", () => {
  it("with independent shards, waits on each channel's own shard", async () => {
    const shard0 = await RedisServer.start();
    const shard1 = await RedisServer.start();
    const replica0 = await RedisServer.start(["--replicaof", "127.0.0.1", String(shard0.port)]);
    try {
      await until(async () => /master_link_status:up/.test(await redisCli(replica0.port, ["INFO", "replication"])), 10_000, "shard 0's replica in sync");
      const r = await startRelay({
        REDIS_URL: `${shard0.url} ${shard1.url}`,
        FANOUT_LOG_PARTITIONS: String(PARTITIONS),
        FANOUT_LOG_PREFIX: "rep5",
        FANOUT_PUBLISH_REPLICAS: "1",
        FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS: "200",
      });
      relays.push(r);
      const on0 = channelOnShard("rs:", 0, PARTITIONS, 2);
      const on1 = channelOnShard("rs:", 1, PARTITIONS, 2);
      for (let i = 0; i < 3; i++) {
        expect((await publish(r.base, { channel: on0, data: i })).status).toBe(200);
        const refused = await publish(r.base, { channel: on1, data: i });
        expect(refused.status).toBe(503);
        expect(refused.json.error.code).toBe("not_replicated");
      }
      // A batch over both: shard 0's part is confirmed, shard 1's is not, so the batch is a 503.
      const batch = await publish(r.base, { messages: [{ channel: on0, data: "b", id: "b0" }, { channel: on1, data: "b", id: "b1" }] });
      expect(batch.status).toBe(503);
      expect(batch.json.error.code).toBe("not_replicated");
    } finally {
      for (const x of [replica0, shard0, shard1]) await x.dispose();
    }
  }, 30_000);

  it("on Cluster, waits on the master that owns the partition's slot", async () => {
    const cluster = await RedisCluster.start(3);
    const replica = await RedisServer.start(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"]);
    try {
      // One replica, for the first master only.
      const master = cluster.ports[0];
      const masterId = (await redisCli(master, ["CLUSTER", "MYID"])).trim();
      await redisCli(replica.port, ["CLUSTER", "MEET", "127.0.0.1", String(master)]);
      await until(async () => (await redisCli(replica.port, ["CLUSTER", "NODES"])).includes(masterId), 15_000, "the new node meets the cluster");
      await until(async () => /OK/.test(await redisCli(replica.port, ["CLUSTER", "REPLICATE", masterId])), 15_000, "CLUSTER REPLICATE");
      await until(async () => /master_link_status:up/.test(await redisCli(replica.port, ["INFO", "replication"])), 15_000, "the replica in sync");
      // Which partitions' stream slots the first master owns.
      const nodes = await redisCli(master, ["CLUSTER", "NODES"]);
      const mine = nodes.split("\n").find((l) => l.startsWith(masterId))!;
      const ranges = mine.split(" ").slice(8).map((r) => r.split("-").map(Number));
      const owned = async (p: number) => {
        const slot = Number(await redisCli(master, ["CLUSTER", "KEYSLOT", streamKey("rep6", p)]));
        return ranges.some(([a, b = a]) => slot >= a && slot <= b);
      };
      const channelWhere = async (want: boolean) => {
        for (let i = 0; ; i++) if ((await owned(partitionOf(`rc:${i}`, PARTITIONS))) === want) return `rc:${i}`;
      };
      const here = await channelWhere(true);
      const elsewhere = await channelWhere(false);
      const r = await startRelay({ REDIS_URL: cluster.url, FANOUT_LOG_PARTITIONS: String(PARTITIONS), FANOUT_LOG_PREFIX: "rep6", FANOUT_PUBLISH_REPLICAS: "1", FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS: "200" });
      relays.push(r);
      // WAIT on any other node would count no replica (or another connection's writes): every
      // attempt must be confirmed on the replicated master and refused elsewhere.
      for (let i = 0; i < 5; i++) {
        const ok = await publish(r.base, { channel: here, data: i });
        expect(ok.status, JSON.stringify(ok.json)).toBe(200);
        const refused = await publish(r.base, { channel: elsewhere, data: i });
        expect(refused.status).toBe(503);
        expect(refused.json.error.code).toBe("not_replicated");
      }
    } finally {
      await replica.dispose();
      await cluster.dispose();
    }
  }, 60_000);
});
