/**
 * Which Redis shard holds a log partition, when the deployment lists several independent
 * Redis servers: `jumpHash(splitmix64(partition), shards)`. Jump consistent hashing (Lamping
 * & Veach, 2014) moves only about 1/(n+1) of the partitions when an (n+1)-th shard is added
 * at the end of the list, and none between the shards that stay. The partition number is
 * mixed first (splitmix64's finalizer) because Jump on small consecutive integers is badly
 * skewed (partitions 0–3 over 2 shards would all land on shard 0).
 *
 * Relays and edge functions compute it from the same two numbers (partition count, shard
 * count), so this file is the one definition. BigInt: 64-bit arithmetic is the algorithm's;
 * it runs once per partition at start-up, never per message.
 */
const MASK = (1n << 64n) - 1n;

/** splitmix64's output function over `x + golden gamma` (Steele, Lea & Flood). */
export function splitmix64(x: bigint): bigint {
  let z = (x + 0x9e3779b97f4a7c15n) & MASK;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
  return z ^ (z >> 31n);
}

/** Jump consistent hash: the bucket in [0, buckets) of a 64-bit key. */
export function jumpHash(key: bigint, buckets: number): number {
  if (!Number.isInteger(buckets) || buckets < 1) throw new RangeError(`buckets must be a positive integer, got ${buckets}`);
  let k = key & MASK;
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    k = (k * 2862933555777941757n + 1n) & MASK;
    j = Math.floor((b + 1) * (2 ** 31 / Number((k >> 33n) + 1n)));
  }
  return b;
}

/** The shard of one partition. */
export function shardOfPartition(partition: number, shards: number): number {
  return shards === 1 ? 0 : jumpHash(splitmix64(BigInt(partition)), shards);
}

/** The partition → shard table of a deployment, and each shard's partitions. */
export class ShardMap {
  /** `shardOf[p]`: the shard holding partition p. */
  readonly shardOf: readonly number[];
  /** `partitionsOf[s]`: the partitions shard s holds, ascending. */
  readonly partitionsOf: readonly (readonly number[])[];

  constructor(
    readonly partitions: number,
    readonly shards: number,
  ) {
    const of = Array.from({ length: partitions }, (_, p) => shardOfPartition(p, shards));
    const by: number[][] = Array.from({ length: shards }, () => []);
    of.forEach((s, p) => by[s].push(p));
    this.shardOf = of;
    this.partitionsOf = by;
  }

  /** Shards left without a partition (they would carry subscriptions and no log): a configuration error. */
  emptyShards(): number[] {
    return this.partitionsOf.flatMap((ps, s) => (ps.length === 0 ? [s] : []));
  }
}
