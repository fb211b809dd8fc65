const encoder = new TextEncoder();

/**
 * Which log partition a channel's history lives in: FNV-1a over the UTF-8 bytes. Publishers
 * on every runtime must agree, so this is the one definition.
 */
export function partitionOf(channel: string, partitions: number): number {
  if (partitions === 1) return 0;
  let h = 0x811c9dc5;
  for (const b of encoder.encode(channel)) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

/**
 * Redis keys of a partition. The `{…}` hash tag keeps a partition's stream and its
 * idempotency keys in one Cluster slot, so one script can touch them together. The tag is
 * `<prefix>:<partition>` unless given (sharded Pub/Sub on Cluster uses balanced tags,
 * protocol/cluster-tags.ts).
 */
export function streamKey(prefix: string, partition: number, tag = `${prefix}:${partition}`): string {
  return `{${tag}}:log`;
}

export function idempotencyKey(prefix: string, partition: number, channel: string, id: string, tag = `${prefix}:${partition}`): string {
  // U+001F cannot occur in a channel or an id, so the pair is unambiguous.
  return `{${tag}}:idem:${channel}\u001f${id}`;
}
