import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Cluster, Redis } from "ioredis";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { relayPool, type RunningRelay } from "../../test/support/relay-harness.js";
import { RedisCluster, redisCli } from "../../test/support/redis-cluster.js";
import { balancedTags, keySlot } from "../../protocol/cluster-tags.js";
import { partitionOf, streamKey } from "../../protocol/partition.js";
import { ShardedClusterBroker } from "./sharded-cluster-broker.js";
import { sleep, until } from "../../test/support/until.js";

/**
 * FANOUT_CLUSTER_PUBSUB=sharded on a real 3-master Redis Cluster with one replica each: log
 * messages go out with SPUBLISH on per-partition shard channels, and a relay's connected
 * clients lose nothing and get nothing twice through a slot migration, a manual failover and
 * a SIGKILLed master (the partition is held and caught up from the log). The cluster starts
 * once for the file; each test uses its own log prefix.
 */

const PARTITIONS = 16;

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start(3, 1);
}, 60_000);
afterAll(async () => {
  await cluster?.dispose();
});

let n = 0;
const { start, open } = relayPool(() => ({ REDIS_URL: cluster.url, FANOUT_CLUSTER_PUBSUB: "sharded", FANOUT_LOG_PREFIX: `sp${n++}`, FANOUT_LOG_PARTITIONS: String(PARTITIONS) }));

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
        // Bounded: a publish waiting on a master that stopped answering is given up and retried.
        const res = await fetch(`${r.base}/v1/publish`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ channel, data: i, id: `${channel}-${i}` }),
          signal: AbortSignal.timeout(2000),
        }).catch(() => ({ status: 0 }));
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

/** The `data` numbers of `channel`'s entries in the partition's log, read from the slot's owner. */
async function loggedData(prefix: string, channel: string): Promise<Set<number>> {
  const p = partitionOf(channel, PARTITIONS);
  const tag = balancedTags(prefix, PARTITIONS)[p];
  const port = await ownerPort(await anyPort(), keySlot(tag));
  const redis = new Redis(port, "127.0.0.1");
  try {
    const rows = (await redis.xrange(streamKey(prefix, p, tag), "-", "+")) as [string, string[]][];
    const out = new Set<number>();
    for (const [, f] of rows) if (f[1] === channel) out.add(JSON.parse(f[3]) as number);
    return out;
  } finally {
    redis.disconnect();
  }
}

/**
 * Runs `disrupt` under a steady publish stream on `channel` watched by `clients`, then checks
 * that every acknowledged publish the log holds arrived exactly once and in order at each,
 * and prints the time from the disruption to the first delivery of a publish acknowledged
 * after it.
 */
async function underSteadyStream(what: string, r: RunningRelay, relays: RunningRelay[], prefix: string, channel: string, watchers: SseClient[], disrupt: () => Promise<void>): Promise<void> {
  const pub = steadyPublisher(r, channel);
  await until(() => pub.acked.length >= 20, 5000, "publishing");
  const eventAt = Date.now();
  await disrupt();
  const doneAt = Date.now();
  const ackedAt = new Map<number, number>();
  const recovered = await Promise.all(
    watchers.map(async (c) => {
      await c.waitFor(
        (x) =>
          received(x, channel).some((d) => {
            const a = pub.acked.find((y) => y.data === d);
            if (a) ackedAt.set(d, a.at);
            return a !== undefined && a.at > doneAt;
          }),
        15_000,
        `${what}: a publish acknowledged after the event`,
      );
      return Date.now() - eventAt;
    }),
  );
  await sleep(300);
  await pub.stop();
  const logged = await loggedData(prefix, channel);
  const acked = pub.acked.map((a) => a.data);
  const want = acked.filter((d) => logged.has(d));
  for (const c of watchers) {
    expect(want.length).toBeGreaterThan(acked.length / 2);
    await c.waitFor((x) => want.every((d) => received(x, channel).includes(d)), 15_000, `${what}: every acknowledged publish in the log`);
    await sleep(100);
    const got = received(c, channel);
    expect(got).toEqual([...new Set(got)].sort((a, b) => a - b));
    expect(c.closed).toBe(false);
  }
  // The subscribing relays resynced the partition: held it and caught up from the log.
  for (const x of relays) {
    expect(await (await fetch(`${x.base}/metrics`)).text()).toMatch(/fanout_catchups_total\{relay="[^"]+"\} [1-9]/);
  }
  console.log(
    `${what}: ${acked.length} publishes acknowledged (${pub.refusals()} refusals retried), ${acked.length - want.length} acknowledged but not in the log afterwards; ` +
      `disruption took ${doneAt - eventAt} ms; delivering again ${recovered.map((ms) => `${ms} ms`).join(" / ")} after it began`,
  );
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

  it("goes back from the firehose to shard channels when its last pattern goes, delivering throughout", async () => {
    const prefix = "spb";
    const r = await start({ FANOUT_LOG_PREFIX: prefix });
    const tag = balancedTags(prefix, PARTITIONS)[partitionOf("b:1", PARTITIONS)];
    const owner = await ownerPort(cluster.ports[0], keySlot(tag));
    const shardChannels = async () => (await redisCli(owner, ["PUBSUB", "SHARDCHANNELS", `{${tag}}:*`])).trim().split("\n").filter(Boolean).sort();
    const c = await open(r, "channel=b:1");
    const p = await open(r, "pattern=b:*");
    await until(async () => (await shardChannels()).some((x) => x.endsWith(":all")), 5000, "the firehose");
    await publish(r.base, { channel: "b:1", data: 1 });
    await p.waitMessages(1);
    p.close();
    await until(async () => !(await shardChannels()).some((x) => x.endsWith(":all")), 5000, "the firehose released");
    expect(await shardChannels()).toContain(`{${tag}}:c:b:1`);
    await publish(r.base, { channel: "b:1", data: 2 });
    await c.waitMessages(2);
    await sleep(100);
    expect(c.envelopes().map((e) => e.data)).toEqual([1, 2]);
    // The switches were held and caught up, but are not link drops: no catch-up counted.
    expect(await (await fetch(`${r.base}/metrics`)).text()).toMatch(/fanout_catchups_total\{relay="[^"]+"\} 0\n/);
  });

  it("warns at start-up when a master gets no partition", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      await start({ FANOUT_LOG_PARTITIONS: "2" });
      await until(() => warn.mock.calls.some((c) => /no log partition on master 127\.0\.0\.1:\d+ \(FANOUT_LOG_PARTITIONS=2 over 3 masters\)/.test(String(c[0]))), 3000, "the warning");
    } finally {
      warn.mockRestore();
    }
  });

  it("reports a throw from the hub's down during a resync as a fault instead of leaving it unhandled", async () => {
    const faults: string[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    const broker = new ShardedClusterBroker(cluster.url, { prefix: "spthrow", partitions: PARTITIONS, maxLen: 100, ttlMs: 0, dedupeSeconds: 60 }, false);
    await broker.start({
      deliver: () => undefined,
      down: (link) => {
        if (link !== PARTITIONS) throw new Error("hub down failed");
      },
      recovered: () => undefined,
      fault: (where) => faults.push(where),
    });
    process.on("unhandledRejection", onUnhandled);
    try {
      // A pattern switches every partition to its firehose: a planned resync, which tells the hub `down`.
      await broker.subscribe("pattern", "t:*");
      await until(() => faults.filter((w) => w === "redis shard resync").length === PARTITIONS, 5000, "a fault per partition");
      await sleep(50);
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
      await broker.close();
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

  it("with FANOUT_CLUSTER_CLASSIC_COPY=on also PUBLISHes the envelope for plain subscribers, and the relay still delivers once", async () => {
    const r = await start({ FANOUT_LOG_PREFIX: "spc", FANOUT_CLUSTER_CLASSIC_COPY: "on" });
    const c = await open(r, "channel=cc:a&pattern=cc:*");
    const plain = new Cluster(cluster.nodes);
    const got: string[] = [];
    try {
      plain.on("message", (_ch: string, msg: string) => got.push(msg));
      await plain.subscribe("cc:a");
      const res = await publish(r.base, { channel: "cc:a", data: 1 });
      // The relay's firehose, plus classic subscribers connected to the node that ran the script.
      expect(res.json.receivers).toBeGreaterThanOrEqual(1);
      await until(() => got.length === 1, 3000, "the plain subscriber");
      expect(JSON.parse(got[0])).toMatchObject({ channel: "cc:a", data: 1, mac: expect.any(String) });
      await c.waitMessages(1);
      await sleep(300);
      // One copy: the shard channel's (exact and pattern give one copy per publish).
      expect(c.envelopes().map((e) => e.data)).toEqual([1]);
      expect(c.envelopes()[0].id).toBe(res.json.id);
    } finally {
      plain.disconnect();
    }
  });

  it("delivers pattern messages again after the pattern flag was lost (the relay sets it and catches up)", async () => {
    const prefix = "spg";
    const r = await start({ FANOUT_LOG_PREFIX: prefix });
    const c = await open(r, "pattern=g:*");
    await publish(r.base, { channel: "g:1", data: 0 });
    await c.waitMessages(1);
    const tag = balancedTags(prefix, PARTITIONS)[partitionOf("g:1", PARTITIONS)];
    const admin = new Cluster(cluster.nodes);
    try {
      await admin.del(`{${tag}}:patterns`);
      // Publishes skip the firehose now: nothing arrives until the relay notices.
      expect((await publish(r.base, { channel: "g:1", data: 1 })).json.receivers).toBe(0);
      // Found at the relay's next flag refresh (every 10 s).
      await c.waitFor((x) => x.envelopes().some((e) => e.data === 1), 15_000, "the message published without the flag, from the log");
      expect(await admin.exists(`{${tag}}:patterns`)).toBe(1);
      await publish(r.base, { channel: "g:1", data: 2 });
      await c.waitMessages(3);
      expect(c.envelopes().map((e) => e.data)).toEqual([0, 1, 2]);
    } finally {
      admin.disconnect();
    }
  }, 30_000);

  it("keeps exact and pattern subscribers whole through a slot migration under a steady publish stream", async () => {
    const prefix = "spm";
    const channel = "m:x";
    const r1 = await start({ FANOUT_LOG_PREFIX: prefix });
    const r2 = await start({ FANOUT_LOG_PREFIX: prefix });
    const exact = await open(r1, `channel=${channel}`);
    const pattern = await open(r2, "pattern=m:*");
    const tags = balancedTags(prefix, PARTITIONS);
    const slot = keySlot(tags[partitionOf(channel, PARTITIONS)]);
    // Publishes on the source master's other partitions, several in flight: turns then hold
    // the migrating partition beside them, so its publishes go in node calls (group-commit.ts)
    // that the master answers ELSEWHERE for it once its keys start moving.
    const home = await ownerPort(cluster.ports[0], slot);
    const neighbours: string[] = [];
    for (let k = 0; neighbours.length < 4; k++) {
      const c = `m:n${k}`;
      const p = partitionOf(c, PARTITIONS);
      if (p !== partitionOf(channel, PARTITIONS) && (await ownerPort(cluster.ports[0], keySlot(tags[p]))) === home) neighbours.push(c);
    }
    let side = true;
    const sideLoad = Promise.all(
      Array.from({ length: 2 * neighbours.length }, async (_, w) => {
        for (let i = 0; side; i++) {
          await fetch(`${r1.base}/v1/publish`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ channel: neighbours[w % neighbours.length], data: i }),
            signal: AbortSignal.timeout(2000),
          }).catch(() => undefined);
        }
      }),
    );
    await underSteadyStream("slot migration", r1, [r1, r2], prefix, channel, [exact, pattern], async () => {
      const all = await nodes(cluster.ports[0]);
      const sourcePort = await ownerPort(cluster.ports[0], slot);
      const source = all.find((x) => x.port === sourcePort)!;
      const target = all.find((x) => x.master && !x.failed && x.port !== sourcePort)!;
      await redisCli(target.port, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", source.id]);
      await redisCli(source.port, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", target.id]);
      for (;;) {
        const keys = (await redisCli(source.port, ["CLUSTER", "GETKEYSINSLOT", String(slot), "100"])).trim().split("\n").filter(Boolean);
        if (keys.length === 0) break;
        await redisCli(source.port, ["MIGRATE", "127.0.0.1", String(target.port), "", "0", "5000", "KEYS", ...keys]);
      }
      for (const m of [target, source, ...all.filter((x) => x.master && !x.failed && x.port !== target.port && x.port !== source.port)]) {
        await redisCli(m.port, ["CLUSTER", "SETSLOT", String(slot), "NODE", target.id]);
      }
      expect(await ownerPort(source.port, slot)).toBe(target.port);
    });
    side = false;
    await sideLoad;
    // The partition's shard channels moved with the slot.
    const owner = await ownerPort(cluster.ports[0], slot);
    const tag = balancedTags(prefix, PARTITIONS)[partitionOf(channel, PARTITIONS)];
    await until(async () => (await redisCli(owner, ["PUBSUB", "SHARDCHANNELS", `{${tag}}:*`])).includes(`{${tag}}:c:${channel}`), 5000, "shard channel on the new owner");
  }, 40_000);

  it("keeps subscribers whole through a manual failover (CLUSTER FAILOVER on the replica)", async () => {
    const prefix = "spf";
    const channel = "f:x";
    const r1 = await start({ FANOUT_LOG_PREFIX: prefix });
    const r2 = await start({ FANOUT_LOG_PREFIX: prefix });
    const exact = await open(r1, `channel=${channel}`);
    const pattern = await open(r2, "pattern=f:*");
    const slot = keySlot(balancedTags(prefix, PARTITIONS)[partitionOf(channel, PARTITIONS)]);
    await underSteadyStream("manual failover", r1, [r1, r2], prefix, channel, [exact, pattern], async () => {
      const masterPort = await ownerPort(cluster.ports[0], slot);
      const all = await nodes(masterPort);
      const master = all.find((x) => x.port === masterPort)!;
      const replicaPort = (await redisCli(masterPort, ["CLUSTER", "REPLICAS", master.id])).split(" ")[1].split(":")[1].split("@")[0];
      await redisCli(Number(replicaPort), ["CLUSTER", "FAILOVER"]);
      await until(async () => (await ownerPort(masterPort, slot)) === Number(replicaPort), 10_000, "the replica promoted");
    });
  }, 40_000);

  it("finds a master that went silent (SIGSTOP, its replica takes over) by the idle probe, and catches up", async () => {
    const prefix = "sps";
    const channel = "s:x";
    const r1 = await start({ FANOUT_LOG_PREFIX: prefix });
    const r2 = await start({ FANOUT_LOG_PREFIX: prefix });
    const exact = await open(r1, `channel=${channel}`);
    const pattern = await open(r2, "pattern=s:*");
    const slot = keySlot(balancedTags(prefix, PARTITIONS)[partitionOf(channel, PARTITIONS)]);
    const masterPort = await ownerPort(cluster.ports[0], slot);
    try {
      // No close, no sunsubscribe: the relays' connections to it just go quiet.
      await underSteadyStream("silent master (SIGSTOP)", r1, [r1, r2], prefix, channel, [exact, pattern], async () => {
        cluster.pause(masterPort, true);
        const ask = cluster.ports.find((p) => p !== masterPort)!;
        await until(async () => (await ownerPort(ask, slot).catch(() => masterPort)) !== masterPort, 15_000, "a replica promoted");
      });
    } finally {
      cluster.pause(masterPort, false);
    }
  }, 45_000);

  it("keeps subscribers whole through a SIGKILLed master (its replica takes over)", async () => {
    const prefix = "spk";
    const channel = "k:x";
    const r1 = await start({ FANOUT_LOG_PREFIX: prefix });
    const r2 = await start({ FANOUT_LOG_PREFIX: prefix });
    const exact = await open(r1, `channel=${channel}`);
    const pattern = await open(r2, "pattern=k:*");
    const slot = keySlot(balancedTags(prefix, PARTITIONS)[partitionOf(channel, PARTITIONS)]);
    await underSteadyStream("SIGKILL of a master", r1, [r1, r2], prefix, channel, [exact, pattern], async () => {
      const masterPort = await ownerPort(cluster.ports[0], slot);
      await cluster.kill(masterPort);
      const ask = cluster.ports.find((p) => p !== masterPort)!;
      await until(async () => (await ownerPort(ask, slot).catch(() => masterPort)) !== masterPort, 15_000, "a replica promoted");
    });
  }, 45_000);
});
