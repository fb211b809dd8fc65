/** Cumulative bucket counts of a histogram, by upper bound (`+Inf` last). */
export type Buckets = Array<{ le: number; count: number }>;

/** Buckets of `now` minus `before` (both cumulative): the observations in between. */
export function bucketDelta(now: Buckets, before: Buckets | undefined): Buckets {
  if (!before) return now;
  return now.map((b, i) => ({ le: b.le, count: b.count - (before[i]?.le === b.le ? before[i].count : 0) }));
}

/**
 * The q-quantile estimated as Prometheus's `histogram_quantile` does: linear inside the bucket
 * that holds the rank; a rank in the +Inf bucket answers the highest finite bound.
 */
export function quantile(q: number, buckets: Buckets): number | undefined {
  const total = buckets[buckets.length - 1]?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket <= 0 ? b.le : prevLe + (b.le - prevLe) * ((rank - prevCount) / inBucket);
    }
    prevLe = Number.isFinite(b.le) ? b.le : prevLe;
    prevCount = b.count;
  }
  return prevLe;
}
