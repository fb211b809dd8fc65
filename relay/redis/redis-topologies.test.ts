import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, Redis } from "ioredis";
import { publish } from "../../test/support/sse-client.js";
import { relayPool } from "../../test/support/relay-harness.js";
import { RedisCluster, RedisSentinelSetup, redisCli } from "../../test/support/redis-cluster.js";
import { partitionOf, streamKey } from "../../protocol/partition.js";
import { tagSetKey } from "../../routes/cache-tags.js";
import { sleep, until } from "../../test/support/until.js";

/** The `data` of every entry for `channel` in one log stream (a Redis Stream), read from `port`. */
async function loggedData(port: number, key: string, channel: string): Promise<Set<unknown>> {
  const redis = new Redis(port, "127.0.0.1");
  try {
    const rows = (await redis.xrange(key, "-", "+")) as [string, string[]][];
    const out = new Set<unknown>();
    for (const [, fields] of rows) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
      if (f.c === channel) out.add(JSON.parse(f.d));
    }
    return out;
  } finally {
    redis.disconnect();
  }
}

/**
 * The relay on real Redis Cluster and Sentinel topologies (REDIS_URL seed-node list and
 * `redis+sentinel://`). Needs redis-server/redis-cli on the PATH. Both topologies start in
 * parallel once for the file and are killed in afterAll, also when starting one failed.
 */

let cluster: RedisCluster | undefined;
let sentinel: RedisSentinelSetup | undefined;

beforeAll(async () => {
  const [c, s] = await Promise.allSettled([RedisCluster.start(3), RedisSentinelSetup.start()]);
  if (c.status === "fulfilled") cluster = c.value;
  if (s.status === "fulfilled") sentinel = s.value;
  const failed = [c, s].find((x) => x.status === "rejected") as PromiseRejectedResult | undefined;
  if (failed) throw failed.reason;
}, 30_000);

afterAll(async () => {
  await Promise.all([cluster?.dispose(), sentinel?.dispose()]);
});

let n = 0;
const pool = relayPool(() => ({ FANOUT_LOG_PREFIX: `topo${n++}`, FANOUT_LOG_PARTITIONS: "8" }));
const start = (url: string, env: Record<string, string> = {}) => pool.start({ REDIS_URL: url, ...env });
const open = pool.open;

describe("Redis Cluster (REDIS_URL=host:port,host:port,…)", () => {
  const admin = () => new Cluster(cluster!.nodes, { lazyConnect: false });

  it("delivers exact, pattern and multiplexed subscriptions", async () => {
    const r = await start(cluster!.url);
    expect((await fetch(`${r.base}/readyz`)).status).toBe(200);
    const multi = await open(r, "channel=orders:events&channel=chat:general&pattern=user:*:notifications");
    const exact = await open(r, "channel=chat:general");
    const pat = await open(r, `pattern=${encodeURIComponent("user:[0-9]*")}`);
    for (const [channel, data] of [["orders:events", 1], ["chat:general", 2], ["user:42:notifications", 3], ["nobody", 4], ["user:7x", 5]] as const) {
      const res = await publish(r.base, { channel, data, type: "t.x" });
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      expect(res.json.duplicate).toBe(false);
    }
    await multi.waitMessages(3);
    await exact.waitMessages(1);
    await pat.waitMessages(2);
    await sleep(100);
    expect(multi.envelopes().map((e) => [e.channel, e.data, e.pattern ?? null, e.type])).toEqual([
      ["orders:events", 1, null, "t.x"],
      ["chat:general", 2, null, "t.x"],
      ["user:42:notifications", 3, "user:*:notifications", "t.x"],
    ]);
    expect(multi.messages().every((m) => m.event === "t.x")).toBe(true);
    expect(exact.envelopes().map((e) => e.data)).toEqual([2]);
    expect(pat.envelopes().map((e) => [e.data, e.pattern])).toEqual([
      [3, "user:[0-9]*"],
      [5, "user:[0-9]*"],
    ]);
  });

  it("publishes a batch across partitions in different slots in order per channel, and resumes with Last-Event-ID", async () => {
    const r = await start(cluster!.url, { FANOUT_LOG_PREFIX: "cl-batch" });
    const channels = ["b:0", "b:1", "b:2", "b:3", "b:4", "b:5", "b:6", "b:7"];
    // The batch really spans slots owned by different masters.
    const a = admin();
    try {
      const slots = new Set(await Promise.all(channels.map((ch) => a.cluster("KEYSLOT", streamKey("cl-batch", partitionOf(ch, 8))) as Promise<number>)));
      expect(slots.size).toBeGreaterThanOrEqual(3);
      const ranges = (await a.cluster("SLOTS")) as unknown as Array<[number, number, [string, number]]>;
      const owners = new Set([...slots].map((s) => ranges.find(([lo, hi]) => s >= lo && s <= hi)![2][1]));
      expect(owners.size).toBeGreaterThanOrEqual(2);
    } finally {
      a.disconnect();
    }
    const c1 = await open(r, "pattern=b:*");
    const batch = Array.from({ length: 40 }, (_, i) => ({ channel: channels[(i * 3) % channels.length], data: i }));
    const res = await publish(r.base, { messages: batch });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.results).toHaveLength(40);
    expect(res.json.results.map((x: { channel: string }) => x.channel)).toEqual(batch.map((m) => m.channel));
    await c1.waitMessages(40);
    const byChannel = (env: Array<{ channel: string; data: unknown }>) => {
      const out: Record<string, unknown[]> = {};
      for (const e of env) (out[e.channel] ??= []).push(e.data);
      return out;
    };
    const want = byChannel(batch);
    expect(byChannel(c1.envelopes())).toEqual(want);
    // Resume: drop the stream, publish more across every partition, come back with Last-Event-ID.
    const last = c1.lastEventId!;
    c1.close();
    const batch2 = Array.from({ length: 24 }, (_, i) => ({ channel: channels[(i * 5) % channels.length], data: 100 + i }));
    expect((await publish(r.base, { messages: batch2 })).status).toBe(200);
    const c2 = await open(r, "pattern=b:*", last);
    await c2.waitMessages(24);
    await publish(r.base, { channel: "b:3", data: "live" });
    await c2.waitMessages(25);
    await sleep(100);
    const got = c2.envelopes();
    expect(c2.events.some((e) => e.event === "reset")).toBe(false);
    expect(byChannel(got.slice(0, 24))).toEqual(byChannel(batch2));
    expect(got.map((e) => [e.channel, e.data, e.id]).slice(24), JSON.stringify(c2.events.slice(-8))).toHaveLength(1);
    expect(got[24].data).toBe("live");
  });

  it("interoperates with plain PUBLISH/SUBSCRIBE from a cluster client, and dedupes idempotent publishes", async () => {
    const r = await start(cluster!.url);
    const c = await open(r, "channel=plain:ch&channel=idem:ch");
    const a = admin();
    const plainSub = new Cluster(cluster!.nodes);
    try {
      await a.publish("plain:ch", '{"a":1}');
      await c.waitMessages(1);
      expect(c.envelopes()[0]).toMatchObject({ channel: "plain:ch", data: { a: 1 } });

      const got: string[] = [];
      plainSub.on("message", (_ch: string, msg: string) => got.push(msg));
      await plainSub.subscribe("idem:ch");
      const first = await publish(r.base, { channel: "idem:ch", data: { n: 1 }, id: "evt-1" });
      const again = await publish(r.base, { channel: "idem:ch", data: { n: 2 }, id: "evt-1" });
      expect(first.status).toBe(200);
      expect(again.json).toMatchObject({ id: first.json.id, duplicate: true, receivers: first.json.receivers });
      expect(first.json.duplicate).toBe(false);
      await c.waitMessages(2);
      await until(() => got.length >= 1, 3000, "plain cluster subscriber");
      await sleep(200);
      expect(c.envelopes().map((e) => e.data)).toEqual([{ a: 1 }, { n: 1 }]);
      expect(got.map((m) => JSON.parse(m))).toEqual([expect.objectContaining({ id: first.json.id, channel: "idem:ch", data: { n: 1 } })]);
    } finally {
      a.disconnect();
      plainSub.disconnect();
    }
  });

  it("keeps tickets and cache invalidation working (keys in different slots)", async () => {
    const r = await start(cluster!.url, { FANOUT_PUBLISH_KEYS: "pk", FANOUT_LOG_PREFIX: "cl-inv" });
    const a = admin();
    try {
      const keys = ["page:/a", "page:/b", "page:/c", "page:/d"];
      for (const k of keys) await a.set(k, "x");
      await a.sadd(tagSetKey("pricing", "cl-inv"), "page:/c", "page:/d");
      const slots = new Set(await Promise.all(keys.map((k) => a.cluster("KEYSLOT", k) as Promise<number>)));
      expect(slots.size).toBeGreaterThan(1);
      const auth = { Authorization: "Bearer pk", "Content-Type": "application/json" };
      const tk = await fetch(`${r.base}/v1/tickets`, { method: "POST", headers: auth, body: JSON.stringify({ channels: ["invalidate:web"] }) });
      expect(tk.status).toBe(200);
      const { ticket } = (await tk.json()) as { ticket: string };
      const c = await open(r, `channel=invalidate:web&ticket=${encodeURIComponent(ticket)}`);
      // A ticket is used once, across relays: the second use is refused.
      const again = await fetch(`${r.base}/v1/events?channel=invalidate:web&ticket=${encodeURIComponent(ticket)}`);
      expect(again.status).toBe(401);
      await again.body?.cancel();
      const res = await fetch(`${r.base}/v1/invalidate`, { method: "POST", headers: auth, body: JSON.stringify({ keys: ["page:/a", "page:/b"], tags: ["pricing"], scope: "web" }) });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { deleted: number }).deleted).toBe(4);
      await c.waitMessages(1);
      expect(c.envelopes()[0]).toMatchObject({ channel: "invalidate:web", type: "invalidate" });
      expect(await Promise.all(keys.map((k) => a.exists(k)))).toEqual([0, 0, 0, 0]);
    } finally {
      a.disconnect();
    }
  });

  it("catches up from the log when the subscription connection is killed mid-stream", async () => {
    const r = await start(cluster!.url);
    const c = await open(r, "channel=k:a&pattern=k:p:*");
    const total = 120;
    let killed = 0;
    for (let i = 0; i < total; i++) {
      const res = await publish(r.base, { channel: i % 2 ? "k:p:x" : "k:a", data: i });
      expect(res.status).toBe(200);
      if (i % 40 === 20) {
        for (const port of cluster!.ports) killed += Number((await redisCli(port, ["CLIENT", "KILL", "TYPE", "pubsub"])).trim() || 0);
      }
    }
    expect(killed).toBeGreaterThan(0);
    await c.waitMessages(total, 10_000);
    await sleep(150);
    const got = c.envelopes().map((e) => e.data as number);
    expect(got.filter((x) => x % 2 === 0)).toEqual(Array.from({ length: total / 2 }, (_, k) => 2 * k));
    expect(got.filter((x) => x % 2 === 1)).toEqual(Array.from({ length: total / 2 }, (_, k) => 2 * k + 1));
    expect(c.closed).toBe(false);
    expect(await (await fetch(`${r.base}/metrics`)).text()).toMatch(/fanout_catchups_total\{relay="[^"]+"\} [1-9]/);
  });
});

describe("Redis Sentinel (REDIS_URL=redis+sentinel://host:port/<master>)", () => {
  it("delivers and resumes with Last-Event-ID", async () => {
    const r = await start(sentinel!.url);
    expect((await fetch(`${r.base}/readyz`)).status).toBe(200);
    const c1 = await open(r, "channel=s:a&pattern=s:p:*");
    await publish(r.base, { channel: "s:a", data: 1 });
    await publish(r.base, { channel: "s:p:1", data: 2 });
    await c1.waitMessages(2);
    expect(c1.envelopes().map((e) => [e.data, e.pattern ?? null])).toEqual([
      [1, null],
      [2, "s:p:*"],
    ]);
    const last = c1.lastEventId!;
    c1.close();
    await publish(r.base, { messages: [{ channel: "s:a", data: 3 }, { channel: "s:p:2", data: 4 }, { channel: "other", data: 0 }, { channel: "s:a", data: 5 }] });
    const c2 = await open(r, "channel=s:a&pattern=s:p:*", last);
    await c2.waitMessages(3);
    await sleep(100);
    // Order is per channel (s:a and s:p:2 live in different partitions).
    expect(c2.envelopes().filter((e) => e.channel === "s:a").map((e) => e.data)).toEqual([3, 5]);
    expect(c2.envelopes().map((e) => e.data).sort()).toEqual([3, 4, 5]);
  });

  it("keeps the stream open through a failover and delivers what is published after it", async () => {
    const r = await start(sentinel!.url, { FANOUT_LOG_PREFIX: "fo" });
    const c = await open(r, "channel=fo:live&pattern=fo:p:*");
    await publish(r.base, { channel: "fo:live", data: "before" });
    await c.waitMessages(1);
    const oldMaster = await sentinel!.currentMasterPort();

    // Publish continuously through the failover: each attempt is 200 or a 503 with Retry-After.
    let stop = false;
    const outcomes: Array<{ at: number; status: number; data: number }> = [];
    const t0 = Date.now();
    const pub = (async () => {
      for (let i = 0; !stop; i++) {
        const res = await publish(r.base, { channel: "fo:live", data: i });
        if (res.status !== 200) {
          expect(res.status).toBe(503);
          expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
        }
        outcomes.push({ at: Date.now() - t0, status: res.status, data: i });
        await sleep(20);
      }
    })();
    const newMaster = await sentinel!.failover();
    expect(newMaster).not.toBe(oldMaster);
    const failedOverAt = Date.now() - t0;
    // Publishing works again on the new master.
    await until(() => outcomes.some((o) => o.status === 200 && o.at > failedOverAt), 10_000, "publish 200 after failover");
    await sleep(300);
    stop = true;
    await pub;
    const after = await publish(r.base, { channel: "fo:live", data: "after" });
    expect(after.status).toBe(200);
    await publish(r.base, { channel: "fo:p:1", data: "after-pattern" });
    await c.waitFor((x) => x.envelopes().some((e) => e.data === "after-pattern"), 10_000, "pattern message after failover");
    await c.waitFor((x) => x.envelopes().some((e) => e.data === "after"), 10_000, "message after failover");
    expect(c.closed).toBe(false);
    // The relay's connections moved to the new master: its pattern subscription is there, and
    // "after" was appended to the log there.
    expect(Number(await redisCli(newMaster, ["PUBSUB", "NUMPAT"]))).toBeGreaterThanOrEqual(1);
    expect(await redisCli(newMaster, ["XREVRANGE", streamKey("fo", partitionOf("fo:live", 8)), "+", "-", "COUNT", "1"])).toContain('"after"');

    // Every accepted publish arrives exactly once, in order. (How long publish answered 503
    // is measured and printed, not asserted: it depends on the machine's load.)
    const failed = outcomes.filter((o) => o.status === 503);
    const window = failed.length ? failed[failed.length - 1].at - failed[0].at : 0;
    // Sentinel replicates asynchronously: a publish acknowledged by the old master in the instant
    // between the promotion and the switch can be lost with it (Redis semantics, not the relay's).
    // Everything accepted after the failover arrives; nothing arrives twice or out of order.
    // `failedOverAt` is when Sentinel named the new master, not when the relay's command link
    // left the old one: an acknowledgement in between is lost with the old master too. So the
    // oracle is the new master's log: every accepted publish it holds must arrive.
    const accepted = outcomes.filter((o) => o.status === 200).map((o) => o.data);
    const acceptedAfter = outcomes.filter((o) => o.status === 200 && o.at > failedOverAt).map((o) => o.data);
    expect(acceptedAfter.length).toBeGreaterThan(0);
    const logged = await loggedData(newMaster, streamKey("fo", partitionOf("fo:live", 8)), "fo:live");
    expect(acceptedAfter.some((d) => logged.has(d))).toBe(true);
    const acceptedLogged = accepted.filter((d) => logged.has(d));
    await c.waitFor((x) => acceptedLogged.every((d) => x.envelopes().some((e) => e.data === d)), 10_000, "every accepted publish in the new master's log");
    const live = c.envelopes().map((e) => e.data).filter((d): d is number => typeof d === "number");
    expect(live).toEqual([...new Set(live)].sort((a, b) => a - b));
    const missing = accepted.filter((d) => !live.includes(d));
    // Only acknowledgements the old master took with it can be missing: nothing in the log.
    expect(missing.filter((d) => logged.has(d))).toEqual([]);
    console.log(`sentinel failover: ${outcomes.length} publishes, ${failed.length} answered 503 over ${window} ms, ${missing.length} acknowledged but not delivered`);

    // The relay reports ready, and a fresh subscriber resumes from the log now on the new master.
    expect((await fetch(`${r.base}/readyz`)).status).toBe(200);
    const c2 = await open(r, "channel=fo:live", c.messages()[0].id);
    await c2.waitFor((x) => x.envelopes().some((e) => e.data === "after"), 10_000, "resume after failover");
  });
});
