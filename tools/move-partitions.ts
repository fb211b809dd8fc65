import { pathToFileURL } from "node:url";
import type { Redis } from "ioredis";
import { streamKey } from "../protocol/partition.js";
import { macKey } from "../protocol/publish-script.js";
import { shardOfPartition } from "../protocol/shard-map.js";
import { connect } from "../relay/redis/redis-connection.js";

/**
 * The steps of changing a sharded log's shard list (docs/protocol.md, "Changing the shard
 * list or the partition count"): fence each moved partition on its old shard so nothing more
 * is written there, copy its log, secret and idempotency ids to its new shard (same ids, same
 * secret: cursors and envelope tags stay valid), and after the rollout release the old copy.
 */
export interface Move {
  partition: number;
  from: number;
  to: number;
}

/** The partitions whose shard differs between `oldShards` and `newShards` shards. */
export function planMoves(partitions: number, oldShards: number, newShards: number): Move[] {
  const out: Move[] = [];
  for (let p = 0; p < partitions; p++) {
    const from = shardOfPartition(p, oldShards);
    const to = shardOfPartition(p, newShards);
    if (from !== to) out.push({ partition: p, from, to });
  }
  return out;
}

/** Where a fenced log is kept until it is released. */
export function movingKey(prefix: string, partition: number): string {
  return `${streamKey(prefix, partition)}:moving`;
}

/**
 * A string where the stream was: the publish script's XADD fails on it (WRONGTYPE), so every
 * publish to the partition on this shard is refused (503) from now on. Atomic, and a no-op
 * when repeated.
 */
const FENCE = `
if redis.call('TYPE', KEYS[1]).ok == 'stream' then redis.call('RENAME', KEYS[1], KEYS[2]) end
redis.call('SET', KEYS[1], 'moved')
return 1
`;

export async function fence(from: Redis, prefix: string, partition: number): Promise<void> {
  await from.eval(FENCE, 2, streamKey(prefix, partition), movingKey(prefix, partition));
}

/** Keys of the partition's idempotency ids (`{<prefix>:<p>}:idem:…`). */
async function idempotencyKeys(r: Redis, prefix: string, partition: number): Promise<string[]> {
  const literal = `{${prefix}:${partition}}:idem:`.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await r.scan(cursor, "MATCH", `${literal}*`, "COUNT", 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== "0");
  return keys;
}

/** DUMP on one server, RESTORE (replacing, keeping the TTL) under `toKey` on the other. */
async function copyKey(from: Redis, to: Redis, fromKey: string, toKey: string): Promise<boolean> {
  const [dump, pttl] = await Promise.all([from.dumpBuffer(fromKey), from.pttl(fromKey)]);
  if (!dump) return false;
  await to.restore(toKey, pttl > 0 ? pttl : 0, dump, "REPLACE");
  return true;
}

/** Copies a fenced partition to its new shard; returns the number of keys copied. */
export async function copy(from: Redis, to: Redis, prefix: string, partition: number): Promise<number> {
  let n = 0;
  if (await copyKey(from, to, movingKey(prefix, partition), streamKey(prefix, partition))) n++;
  if (await copyKey(from, to, macKey(prefix, partition), macKey(prefix, partition))) n++;
  for (const k of await idempotencyKeys(from, prefix, partition)) if (await copyKey(from, to, k, k)) n++;
  return n;
}

/** Deletes the moved partition's keys (fence included) from its old shard. */
export async function release(from: Redis, prefix: string, partition: number): Promise<void> {
  const keys = [streamKey(prefix, partition), movingKey(prefix, partition), macKey(prefix, partition), ...(await idempotencyKeys(from, prefix, partition))];
  for (const k of keys) await from.del(k);
}

const USAGE = `usage: npx tsx tools/move-partitions.ts <plan|fence|copy|release> --old "<shard URLs>" --new "<shard URLs>"
  FANOUT_LOG_PREFIX and FANOUT_LOG_PARTITIONS as the relays have them. The lists are REDIS_URL
  values (whitespace-separated); one must extend the other (shards added or removed at the end).`;

// CLI: plan, then fence, copy, roll out the new list, release.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [step, ...rest] = process.argv.slice(2);
  const opt = (name: string) => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const oldList = (opt("--old") ?? "").trim().split(/\s+/).filter(Boolean);
  const newList = (opt("--new") ?? "").trim().split(/\s+/).filter(Boolean);
  const shorter = oldList.length <= newList.length ? oldList : newList;
  const longer = shorter === oldList ? newList : oldList;
  if (!["plan", "fence", "copy", "release"].includes(step) || shorter.length === 0 || shorter.some((u, i) => u !== longer[i])) {
    console.error(USAGE);
    process.exit(2);
  }
  const prefix = process.env.FANOUT_LOG_PREFIX ?? "fanout";
  const partitions = Number(process.env.FANOUT_LOG_PARTITIONS ?? 4);
  const moves = planMoves(partitions, oldList.length, newList.length);
  const clients = new Map<string, Redis>();
  const client = (url: string) => {
    let c = clients.get(url);
    if (!c) clients.set(url, (c = connect(url, { maxRetriesPerRequest: 2 }) as Redis));
    return c;
  };
  try {
    for (const m of moves) {
      const from = oldList[m.from];
      const to = newList[m.to];
      if (step === "plan") console.log(`partition ${m.partition}: shard ${m.from} (${from}) → shard ${m.to} (${to})`);
      else if (step === "fence") await fence(client(from), prefix, m.partition);
      else if (step === "copy") console.log(`partition ${m.partition}: ${await copy(client(from), client(to), prefix, m.partition)} keys copied`);
      else await release(client(from), prefix, m.partition);
    }
    if (moves.length === 0) console.log("no partition moves");
  } finally {
    for (const c of clients.values()) c.disconnect();
  }
}
