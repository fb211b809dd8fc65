const encoder = new TextEncoder();

/** Redis Cluster's hash slot count. */
export const CLUSTER_SLOTS = 16384;

/** CRC16-CCITT (XMODEM), Redis Cluster's key hash (`crc16.c` in Redis). */
export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** A key's Cluster slot, with the `{…}` hash-tag rule (`CLUSTER KEYSLOT`). */
export function keySlot(key: string): number {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(encoder.encode(key)) % CLUSTER_SLOTS;
}

/**
 * One hash tag per log partition whose slots spread evenly over the slot range, so the
 * partitions spread evenly over the masters of a Cluster whose masters own equal contiguous
 * ranges (what `redis-cli --cluster create` makes). Partition `p` of `n` gets
 * `<prefix>:<p>:<k>` with the smallest `k ≥ 0` whose slot lies within 1/8 of a partition's
 * share of the middle of the p-th n-th of the range: the tag `<prefix>:<p>` alone spreads
 * unevenly (16 partitions over 3 masters: 8/5/3). A pure function: every relay computes the
 * same tags.
 */
export function balancedTags(prefix: string, partitions: number): string[] {
  const share = CLUSTER_SLOTS / partitions;
  const slack = Math.max(0, Math.floor(share / 8));
  return Array.from({ length: partitions }, (_, p) => {
    const centre = Math.floor((p + 0.5) * share);
    for (let k = 0; ; k++) {
      const tag = `${prefix}:${p}:${k}`;
      if (Math.abs(keySlot(tag) - centre) <= slack) return tag;
    }
  });
}
