import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { balancedTags, keySlot } from "../../protocol/cluster-tags.js";
import { FanoutError } from "../../protocol/errors.js";
import { partitionOf, streamKey } from "../../protocol/partition.js";
import type { PublishMessage, PublishResult } from "../../protocol/publish-request.js";
import type { LogSettings } from "../../protocol/publish-script.js";
import { RedisCluster, redisCli } from "../../test/support/redis-cluster.js";
import { sleep, until } from "../../test/support/until.js";
import { firehoseChannel, patternFlagKey } from "../../protocol/shard-channels.js";
import { macKey } from "../../protocol/publish-script.js";
import { macMatches } from "./envelope-mac.js";
import { ZERO, comparePositions, parseMessageId } from "../../protocol/position.js";
import { RedisBroker } from "./redis-broker.js";

/**
 * Group commit on Redis Cluster, per node (group-commit.ts, the script's node form): the
 * partitions of a turn that one master owns go to it as one script call, each request with
 * its own result and error; a partition the master cannot serve (its slot moved, or is
 * migrating) goes again on its own, and nothing is lost, doubled or reordered.
 */

const PARTITIONS = 16;
const quiet = { deliver: () => undefined, down: () => undefined, recovered: () => undefined, fault: () => undefined };

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start(3);
}, 30_000);
afterAll(async () => {
  await cluster?.dispose();
});

const brokers: RedisBroker[] = [];
afterEach(async () => {
  for (const b of brokers.splice(0)) await b.close();
});

function settings(prefix: string, mode: "sharded" | "classic"): LogSettings {
  const s: LogSettings = { prefix, partitions: PARTITIONS, maxLen: 100_000, ttlMs: 0, dedupeSeconds: 60 };
  return mode === "sharded" ? { ...s, tags: balancedTags(prefix, PARTITIONS), pubsub: "sharded" } : s;
}

async function broker(s: LogSettings): Promise<RedisBroker> {
  const b = new RedisBroker(cluster.url, s, undefined, s.pubsub === "sharded" ? "shard" : "classic");
  brokers.push(b);
  await b.start(quiet);
  return b;
}

const tagOf = (s: LogSettings, p: number) => s.tags?.[p] ?? `${s.prefix}:${p}`;

/** A channel `<base>-<n>` in partition `p`. */
function channelIn(p: number, base: string): string {
  for (let n = 0; ; n++) if (partitionOf(`${base}-${n}`, PARTITIONS) === p) return `${base}-${n}`;
}

/** Per master port, the slot ranges it owns (CLUSTER SLOTS). */
async function slotOwners(): Promise<Array<{ from: number; to: number; port: number; id: string }>> {
  const r = new Redis(cluster.ports[0], "127.0.0.1");
  try {
    const ranges = (await r.cluster("SLOTS")) as unknown as Array<[number, number, [string, number, string]]>;
    return ranges.map(([from, to, [, port, id]]) => ({ from, to, port, id }));
  } finally {
    r.disconnect();
  }
}
async function ownerOf(slot: number): Promise<{ port: number; id: string }> {
  const hit = (await slotOwners()).find((x) => slot >= x.from && slot <= x.to);
  if (!hit) throw new Error(`no owner of slot ${slot}`);
  return hit;
}

async function evalshaCalls(port: number): Promise<number> {
  const m = /cmdstat_evalsha:calls=(\d+)/.exec(await redisCli(port, ["INFO", "commandstats"]));
  return m ? Number(m[1]) : 0;
}

type Outcome = { ok: true; results: PublishResult[] } | { ok: false; err: unknown };
/** Starts every publish in this turn (so they are grouped) and collects each outcome. */
function together(b: RedisBroker, requests: PublishMessage[][]): Promise<Outcome[]> {
  return Promise.all(requests.map((m) => b.publish(m).then((results): Outcome => ({ ok: true, results }), (err): Outcome => ({ ok: false, err }))));
}

/** `channel`'s entries in partition `p`'s log as `[id, data]`, read on the slot's owner. */
async function logged(s: LogSettings, channel: string): Promise<Array<[string, string]>> {
  const p = partitionOf(channel, PARTITIONS);
  const { port } = await ownerOf(keySlot(tagOf(s, p)));
  const r = new Redis(port, "127.0.0.1");
  try {
    const rows = (await r.xrange(streamKey(s.prefix, p, tagOf(s, p)), "-", "+")) as [string, string[]][];
    return rows.filter(([, f]) => f[1] === channel).map(([sid, f]) => [`${p}-${sid}`, f[3]]);
  } finally {
    r.disconnect();
  }
}

/** Moves `slot` from its master to another one, key by key (MIGRATING/IMPORTING, MIGRATE, SETSLOT NODE on every master). */
async function migrate(slot: number, between?: () => Promise<void>): Promise<number> {
  const owners = await slotOwners();
  const source = owners.find((x) => slot >= x.from && slot <= x.to)!;
  const target = owners.find((x) => x.port !== source.port)!;
  await redisCli(target.port, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", source.id]);
  await redisCli(source.port, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", target.id]);
  for (;;) {
    const keys = (await redisCli(source.port, ["CLUSTER", "GETKEYSINSLOT", String(slot), "10"])).trim().split("\n").filter(Boolean);
    if (keys.length === 0) break;
    await redisCli(source.port, ["MIGRATE", "127.0.0.1", String(target.port), "", "0", "5000", "KEYS", ...keys]);
    await between?.();
  }
  const masters = [...new Set(owners.map((x) => x.port))];
  for (const port of [target.port, source.port, ...masters.filter((p) => p !== target.port && p !== source.port)]) {
    await redisCli(port, ["CLUSTER", "SETSLOT", String(slot), "NODE", target.id]);
  }
  return target.port;
}

describe("group commit per Cluster node", () => {
  it("sends a turn's partitions of one master as one script call on it, each request with its own result and error", async () => {
    const s = settings("gn1", "sharded");
    const b = await broker(s);
    const chans = Array.from({ length: PARTITIONS }, (_, p) => channelIn(p, "n"));
    // Every master knows the script (EVALSHA, NOSCRIPT, EVAL once), and an id to retry.
    await together(b, chans.map((c) => [{ channel: c, data: "0" }]));
    const first = await b.publish([{ channel: chans[0], data: '"x"', id: "x-1" }]);
    // Something that is not a stream where partition 5's log lives: its requests fail, alone.
    const broken = await ownerOf(keySlot(tagOf(s, 5)));
    await redisCli(broken.port, ["DEL", streamKey(s.prefix, 5, tagOf(s, 5))]);
    await redisCli(broken.port, ["SET", streamKey(s.prefix, 5, tagOf(s, 5)), "not a stream"]);
    for (const port of cluster.ports) await redisCli(port, ["CONFIG", "RESETSTAT"]);
    const calls = b.commit.stats.nodeCalls;

    const requests: PublishMessage[][] = [];
    for (let i = 0; i < 3 * PARTITIONS; i++) requests.push([{ channel: chans[i % PARTITIONS], data: String(i) }]);
    requests.push([{ channel: chans[0], data: '"x"', id: "x-1" }]); // a retry: the first result back
    requests.push([
      { channel: chans[1], data: '"b1"' },
      { channel: chans[2], data: '"b2"' },
    ]);
    const out = await together(b, requests);

    // One EVALSHA per master, whatever number of its partitions the turn touched.
    for (const port of cluster.ports) expect(await evalshaCalls(port)).toBe(1);
    expect(b.commit.stats.nodeCalls - calls).toBe(3);
    expect(b.commit.stats.fallbacks).toBe(0);
    out.forEach((o, i) => {
      const p = i < 3 * PARTITIONS ? i % PARTITIONS : -1;
      if (p === 5) {
        expect(o.ok).toBe(false);
        expect(((o as { err: unknown }).err as FanoutError).status).toBe(503);
      } else expect(o.ok).toBe(true);
    });
    const res = out.map((o) => (o.ok ? o.results : []));
    expect(res[3 * PARTITIONS]).toEqual([{ ...first[0], duplicate: true }]);
    expect(res[3 * PARTITIONS + 1].map((r) => [r.channel, r.duplicate])).toEqual([
      [chans[1], false],
      [chans[2], false],
    ]);
    // Every other request is in its partition's log under the id it was answered, in order.
    for (let p = 0; p < PARTITIONS; p++) {
      if (p === 5) continue;
      const mine = requests.map((r, i) => [r, res[i]] as const).filter(([r]) => r.length === 1 && r[0].channel === chans[p] && r[0].id === undefined);
      const rows = (await logged(s, chans[p])).slice(1).filter(([, d]) => d !== '"x"' && !d.startsWith('"b'));
      expect(rows).toEqual(mine.map(([r, x]) => [x[0].id, r[0].data]));
    }
  }, 30_000);

  it("reads each partition's secret and pattern flag in its key check: the partition's MAC on every envelope, the firehose only where flagged", async () => {
    const s = settings("gn4", "sharded");
    const b = await broker(s);
    const chans = Array.from({ length: PARTITIONS }, (_, p) => channelIn(p, "f"));
    await together(b, chans.map((c) => [{ channel: c, data: "0" }])); // every master knows the script
    const owner = await Promise.all(chans.map((_, p) => ownerOf(keySlot(tagOf(s, p)))));
    // Every third partition has a relay holding a pattern (its flag set); partition 1 lost its secret.
    const flagged = chans.map((_, p) => p % 3 === 0);
    for (let p = 0; p < PARTITIONS; p++) if (flagged[p]) await redisCli(owner[p].port, ["SET", patternFlagKey(tagOf(s, p)), "1", "PX", "60000"]);
    await redisCli(owner[1].port, ["DEL", macKey(s.prefix, 1, tagOf(s, 1))]);
    // A plain subscriber per master on the firehose of every partition it owns.
    const got: Array<{ p: number; env: { id: string; channel: string; ts: number; mac: string } }> = [];
    const subs = await Promise.all(
      [...new Set(owner.map((o) => o.port))].map(async (port) => {
        const r = new Redis(port, "127.0.0.1");
        r.on("smessage", (ch: string, msg: string) => got.push({ p: chans.findIndex((_, p) => firehoseChannel(tagOf(s, p)) === ch), env: JSON.parse(msg) }));
        const mine = chans.map((_, p) => p).filter((p) => owner[p].port === port);
        for (const p of mine) await r.ssubscribe(firehoseChannel(tagOf(s, p))); // one slot per SSUBSCRIBE
        return r;
      }),
    );
    try {
      const calls = b.commit.stats.nodeCalls;
      const out = await together(b, chans.map((c, p) => [{ channel: c, data: String(p) }]));
      expect(b.commit.stats.nodeCalls - calls).toBe(3);
      // Receivers: the firehose subscriber where the flag is set, nobody on the shard channels.
      expect(out.map((o) => (o.ok ? o.results[0].receivers : -1))).toEqual(flagged.map((f) => (f ? 1 : 0)));
      const want = flagged.filter(Boolean).length;
      await until(() => got.length >= want, 5_000, "the flagged partitions' firehose messages");
      await sleep(100);
      expect(got.map((g) => g.p).sort((x, y) => x - y)).toEqual(chans.map((_, p) => p).filter((p) => flagged[p]));
      // Each envelope carries its partition's MAC, under the secret Redis holds for it now
      // (partition 1's made fresh by this very call).
      for (const p of [1, ...got.map((g) => g.p)]) {
        const secret = (await redisCli(owner[p].port, ["GET", macKey(s.prefix, p, tagOf(s, p))])).trim();
        expect(secret).toMatch(/^[0-9a-f]{40}$/);
        const g = got.find((x) => x.p === p);
        const r = out[p].ok ? out[p].results[0] : undefined;
        if (g) expect(macMatches(secret, g.env.id, g.env.channel, g.env.ts, g.env.mac)).toBe(true);
        else expect(r?.id).toMatch(/^1-/);
      }
    } finally {
      for (const r of subs) r.disconnect();
    }
  }, 30_000);

  it("trims every log a node call appended to by its age limit, and keeps what the call wrote", async () => {
    const s: LogSettings = { ...settings("gn5", "sharded"), ttlMs: 300 };
    const b = await broker(s);
    const chans = Array.from({ length: PARTITIONS }, (_, p) => channelIn(p, "t"));
    // Redis trims whole nodes (about 100 entries): old enough entries in two logs to fill a few.
    const aged = [3, 11];
    for (const p of aged) for (let i = 0; i < 3; i++) await b.publish(Array.from({ length: 100 }, () => ({ channel: chans[p], data: "1" })));
    const first = await Promise.all(aged.map(async (p) => (await b.read(p, ZERO, 1))[0].pos));
    await sleep(400);
    const calls = b.commit.stats.nodeCalls;
    const out = await together(b, chans.map((c) => [{ channel: c, data: "2" }]));
    expect(b.commit.stats.nodeCalls - calls).toBe(3);
    for (const [k, p] of aged.entries()) {
      const gap = (await b.state(p)).gapBefore;
      expect(comparePositions(first[k], gap)).toBeLessThan(0);
      const o = out[p];
      expect(o.ok).toBe(true);
      if (o.ok) expect(comparePositions(parseMessageId(o.results[0].id)!.pos, gap)).toBeGreaterThanOrEqual(0); // it may be the first entry left
    }
  }, 30_000);

  it("sends a partition whose slot moved away again on its own: answered once, logged once, in order", async () => {
    for (const mode of ["classic", "sharded"] as const) {
      const s = settings(`gn2${mode[0]}`, mode);
      const b = await broker(s);
      const p = 3;
      const chan = channelIn(p, "m");
      await b.publish([{ channel: chan, data: "0", id: "m-0" }]);
      // Another partition on the same master, so that the turn makes a node call there.
      const home = await ownerOf(keySlot(tagOf(s, p)));
      const q = (await Promise.all(Array.from({ length: PARTITIONS }, async (_, k) => [k, (await ownerOf(keySlot(tagOf(s, k)))).port] as const))).find(
        ([k, port]) => k !== p && port === home.port,
      )![0];
      const other = channelIn(q, "o");
      // The slot moves behind the broker's back: its slot map still names the old master.
      await migrate(keySlot(tagOf(s, p)));
      const fallbacks = b.commit.stats.fallbacks;
      const out = await together(b, [
        [{ channel: chan, data: "1", id: "m-1" }],
        [{ channel: other, data: "1" }],
        [{ channel: chan, data: "2" }],
        [{ channel: chan, data: "0", id: "m-0" }], // a retry of a publish made before the move
        [{ channel: chan, data: "3", id: "m-3" }],
      ]);
      expect(out.every((o) => o.ok)).toBe(true);
      expect(b.commit.stats.fallbacks - fallbacks).toBe(1);
      const res = out.map((o) => (o as { results: PublishResult[] }).results[0]);
      expect(res[3].duplicate).toBe(true);
      const rows = await logged(s, chan);
      expect(rows.map(([, d]) => d)).toEqual(["0", "1", "2", "3"]);
      expect(rows.slice(1).map(([id]) => id)).toEqual([res[0].id, res[2].id, res[4].id]);
      expect(rows[0][0]).toBe(res[3].id);
    }
  }, 30_000);

  it("loses nothing, doubles nothing and keeps each channel's order while a slot migrates under steady turns", async () => {
    const s = settings("gn3", "sharded");
    const b = await broker(s);
    const p = 7;
    const home = await ownerOf(keySlot(tagOf(s, p)));
    const neighbours: number[] = [];
    for (let k = 0; k < PARTITIONS; k++) if ((await ownerOf(keySlot(tagOf(s, k)))).port === home.port) neighbours.push(k);
    const chans = neighbours.map((k) => channelIn(k, "s"));
    // Turns of one request per channel (the migrating partition's and its neighbours'), with
    // idempotency ids, each retried until answered (a 503 is retried with the same id).
    const sent = new Map<string, number>(chans.map((c) => [c, 0]));
    const answered = new Map<string, PublishResult[]>(chans.map((c) => [c, []]));
    let stop = false;
    let refused = 0;
    const loop = (async () => {
      for (let turn = 0; !stop || turn < 5; turn++) {
        await Promise.all(
          chans.map(async (c) => {
            const i = sent.get(c)!;
            sent.set(c, i + 1);
            for (;;) {
              try {
                const [r] = await b.publish([{ channel: c, data: String(i), id: `${c}-${i}` }]);
                answered.get(c)!.push(r);
                return;
              } catch {
                refused++;
                await sleep(20);
              }
            }
          }),
        );
      }
    })();
    await sleep(200);
    const nodeCalls = b.commit.stats.nodeCalls;
    await migrate(keySlot(tagOf(s, p)), () => sleep(10));
    await sleep(300);
    stop = true;
    await loop;
    expect(b.commit.stats.nodeCalls).toBeGreaterThan(nodeCalls);
    expect(b.commit.stats.fallbacks).toBeGreaterThan(0);
    for (const c of chans) {
      const n = sent.get(c)!;
      const rows = await logged(s, c);
      // Every publish once, in the order made; each answer names its log entry.
      expect(rows.map(([, d]) => Number(d))).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(answered.get(c)!.map((r) => r.id)).toEqual(rows.map(([id]) => id));
    }
    console.log(`slot migration under turns of ${chans.length} partitions: ${b.commit.stats.fallbacks} parts sent again on their own, ${refused} publishes refused and retried`);
  }, 60_000);
});
