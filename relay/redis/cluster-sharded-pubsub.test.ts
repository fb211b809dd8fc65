import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "ioredis";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { RedisCluster, redisCli } from "../../test/support/redis-cluster.js";
import { balancedTags, keySlot } from "../../protocol/cluster-tags.js";
import { partitionOf, streamKey } from "../../protocol/partition.js";
import { ShardedClusterBroker } from "./sharded-cluster-broker.js";

/**
 * FANOUT_CLUSTER_PUBSUB=sharded on a real 3-master Redis Cluster with one replica each: log
 * messages go out with SPUBLISH on per-partition shard channels, and a relay's connected
 * clients lose nothing and get nothing twice through a slot migration, a manual failover and
 * a SIGKILLed master (the partition is held and caught up from the log). The cluster starts
 * once for the file; each test uses its own log prefix.
 */

const PARTITIONS = 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start(3, 1);
}, 60_000);
afterAll(async () => {
  await cluster?.dispose();
});

let n = 0;
const relays: RunningRelay[] = [];
const clients: SseClient[] = [];
const start = async (env: Record<string, string> = {}) => {
  const r = await startRelay({ REDIS_URL: cluster.url, FANOUT_CLUSTER_PUBSUB: "sharded", FANOUT_LOG_PREFIX: `sp${n++}`, FANOUT_LOG_PARTITIONS: String(PARTITIONS), ...env });
  relays.push(r);
  return r;
};
const open = async (r: RunningRelay, qs: string, lastEventId?: string) => {
  const c = await SseClient.open(`${r.base}/v1/events?${qs}`, lastEventId ? { "Last-Event-ID": lastEventId } : {});
  clients.push(c);
  expect(c.status, c.body).toBe(200);
  await c.waitReady();
  return c;
};
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  for (const r of relays.splice(0)) await r.stop();
});

/** `role` and slot ranges of every live node, from CLUSTER NODES asked of `port`. */
async function nodes(port: number): Promise<Array<{ id: string; port: number; master: boolean; slots: string[]; failed: boolean }>> {
  const text = await redisCli(port, ["CLUSTER", "NODES"]);
  return text
    .trim()
    .split("\n")
    .map((line) => {
      const f = line.split(" ");
      return { id: f[0], port: Number(f[1].split(":")[1].split("@")[0]), master: f[2].includes("master"), failed: f[2].includes("fail"), slots: f.slice(8) };
    });
}

/** The master port serving `slot`, as `port` sees it. */
async function ownerPort(port: number, slot: number): Promise<number> {
  for (const nd of await nodes(port)) {
    if (!nd.master || nd.failed) continue;
    for (const r of nd.slots) {
      const [a, b] = r.split("-").map(Number);
      if (slot >= a && slot <= (b ?? a)) return nd.port;
    }
  }
  throw new Error(`no owner of slot ${slot}`);
}

/** A live node to ask (the first of the cluster's ports that answers). */
async function anyPort(): Promise<number> {
  for (const p of cluster.ports) {
    try {
      await redisCli(p, ["PING"], 1000);
      return p;
    } catch {
      /* killed */
    }
  }
  throw new Error("no live node");
}

/**
 * Publishes `data: 0, 1, 2, …` to `channel` through the relay every few ms until stopped,
 * each with an idempotency id and retried on 503 (the way a publisher uses the API), and
 * records when each was acknowledged.
 */
function steadyPublisher(r: RunningRelay, channel: string) {
  const acked: Array<{ data: number; at: number }> = [];
  let stopped = false;
  let refusals = 0;
  const run = (async () => {
    for (let i = 0; !stopped; i++) {
      for (;;) {
        const res = await publish(r.base, { channel, data: i, id: `${channel}-${i}` }).catch(() => ({ status: 0 }) as { status: number });
        if (res.status === 200) break;
        refusals++;
        if (stopped) return;
        await sleep(50);
      }
      acked.push({ data: i, at: Date.now() });
      await sleep(5);
    }
  })();
  return {
    acked,
    refusals: () => refusals,
    stop: async () => {
      stopped = true;
      await run;
    },
  };
}

/** The numbers a client received on `channel`, in arrival order. */
const received = (c: SseClient, channel: string) =>
  c
    .envelopes()
    .filter((e) => e.channel === channel)
    .map((e) => e.data as number);

/**
 * After a disruption: every acknowledged publish that the log holds arrived exactly once and
 * in order; prints how long the partition took to deliver again after `eventAt`.
 */
async function expectExactlyOnce(what: string, c: SseClient, channel: string, acked: Array<{ data: number; at: number }>, eventAt: number, logged?: Set<number>): Promise<void> {
  const want = acked.map((a) => a.data).filter((d) => !logged || logged.has(d));
  await c.waitFor((x) => want.every((d) => received(x, channel).includes(d)), 15_000, `${what}: every acknowledged publish`);
  await sleep(200);
  const got = received(c, channel);
  expect(got).toEqual([...new Set(got)].sort((a, b) => a - b));
  const firstAfter = acked.find((a) => a.at > eventAt);
  const arrivals = c.envelopes().filter((e) => e.channel === channel);
  expect(c.closed).toBe(false);
  console.log(
    `${what}: ${acked.length} acknowledged, ${got.length} delivered, ${acked.length - want.length} acknowledged but lost with the old master; ` +
      `first publish acknowledged ${firstAfter ? firstAfter.at - eventAt : "n/a"} ms after the event`,
  );
  void arrivals;
}

describe("Redis Cluster with sharded Pub/Sub (FANOUT_CLUSTER_PUBSUB=sharded)", () => {
  it("delivers exact and pattern subscriptions over SSUBSCRIBE, one connection per master, partitions balanced", async () => {
    const r = await start({ FANOUT_LOG_PREFIX: "spa" });
    const broker = r.relay.context.broker as ShardedClusterBroker;
    expect(broker).toBeInstanceOf(ShardedClusterBroker);
    const c = await open(r, "channel=a:1&channel=a:2&pattern=p:*");
    const published = await publish(r.base, { messages: [{ channel: "a:1", data: 1 }, { channel: "a:2", data: 2 }, { channel: "p:x", data: 3 }, { channel: "zz", data: 0 }] });
    expect(published.status).toBe(200);
    await c.waitMessages(3);
    await sleep(100);
    // Partitions live on different masters: order holds per channel, not across them.
    expect(c.envelopes().map((e) => [e.channel, e.data, e.pattern ?? null]).sort((a, b) => (a[1] as number) - (b[1] as number))).toEqual([
      ["a:1", 1, null],
      ["a:2", 2, null],
      ["p:x", 3, "p:*"],
    ]);

    // The relay holds patterns, so every partition is on its firehose; one connection per master.
    const tags = balancedTags("spa", PARTITIONS);
    const shard = new Map<number, string[]>();
    for (const port of cluster.ports) shard.set(port, (await redisCli(port, ["PUBSUB", "SHARDCHANNELS", "{spa:*"])).trim().split("\n").filter(Boolean));
    const all = [...shard.values()].flat();
    for (const t of tags) expect(all).toContain(`{${t}}:all`);
    // Balanced: 5/6/5 partitions over the three masters (their markers say where each sits).
    const masters = (await nodes(cluster.ports[0])).filter((x) => x.master && !x.failed).map((x) => x.port);
    const perMaster = masters.map((m) => shard.get(m)!.filter((ch) => ch.endsWith(":all")).length).sort();
    expect(perMaster).toEqual([5, 5, 6]);
    const placement = broker.placement();
    expect(Object.keys(placement)).toHaveLength(3);
    for (const [key, ps] of Object.entries(placement)) for (const p of ps) expect(await ownerPort(cluster.ports[0], keySlot(tags[p]))).toBe(Number(key.split(":")[1]));

    // A relay without patterns subscribes its channels' shard channels.
    const r2 = await start({ FANOUT_LOG_PREFIX: "spa" });
    const c2 = await open(r2, "channel=a:1");
    const owner = await ownerPort(cluster.ports[0], keySlot(tags[partitionOf("a:1", PARTITIONS)]));
    expect(await redisCli(owner, ["PUBSUB", "SHARDCHANNELS", `{${tags[partitionOf("a:1", PARTITIONS)]}}:c:*`])).toContain(`:c:a:1`);
    const res = await publish(r.base, { channel: "a:1", data: 4 });
    // receivers: r2's exact shard channel and r's firehose.
    expect(res.json.receivers).toBe(2);
    await c2.waitMessages(1);
    await c.waitMessages(4);
    expect(c2.envelopes()[0]).toMatchObject({ channel: "a:1", data: 4 });

    // The log keys carry the balanced tag.
    const admin = new Cluster(cluster.nodes);
    try {
      expect(await admin.xlen(streamKey("spa", partitionOf("a:1", PARTITIONS), tags[partitionOf("a:1", PARTITIONS)]))).toBe(2);
      // Interop: a plain PUBLISH from another program reaches the relay's classic subscription (live only).
      await admin.publish("a:1", JSON.stringify({ plain: true }));
      await c2.waitMessages(2);
      expect(c2.envelopes()[1].data).toEqual({ plain: true });
      // No classic envelope PUBLISH by default: a plain Redis subscriber sees nothing of log messages.
      expect(res.json.receivers).toBe(2);
    } finally {
      admin.disconnect();
    }
  });

  it("resumes across partitions with one cursor", async () => {
    const r = await start();
    const chans = ["r:a", "r:b", "r:c", "r:d", "r:e"];
    expect(new Set(chans.map((ch) => partitionOf(ch, PARTITIONS))).size).toBeGreaterThan(2);
    const qs = chans.map((ch) => `channel=${ch}`).join("&") + "&pattern=rp:*";
    const c1 = await open(r, qs);
    await publish(r.base, { messages: chans.map((ch, i) => ({ channel: ch, data: i })) });
    await c1.waitMessages(chans.length);
    const last = c1.lastEventId!;
    c1.close();
    await publish(r.base, { messages: [...chans.map((ch, i) => ({ channel: ch, data: 10 + i })), { channel: "rp:1", data: 20 }] });
    const c2 = await open(r, qs, last);
    await c2.waitMessages(chans.length + 1);
    await sleep(150);
    expect(c2.envelopes().map((e) => e.data).sort((a, b) => (a as number) - (b as number))).toEqual([10, 11, 12, 13, 14, 20]);
  });
});
