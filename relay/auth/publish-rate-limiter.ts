/** Distinct keys tracked before idle (full) buckets are dropped. */
const PRUNE_AT = 10_000;

/**
 * Per-publisher token buckets (`FANOUT_PUBLISH_RATE` messages per second, `FANOUT_PUBLISH_BURST`
 * deep; rate 0 turns limiting off). A batch costs one token per message; a batch larger than
 * the bucket passes when the bucket is full and leaves it in debt, so big batches are slowed,
 * not refused forever. Per relay: N relays allow up to N times the rate.
 */
export class PublishRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes `cost` tokens for `key`: 0 when allowed, otherwise the seconds to wait (≥ 1). */
  take(key: string, cost: number): number {
    if (this.rate <= 0) return 0;
    const t = this.now();
    let b = this.buckets.get(key);
    if (b) {
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
      b.at = t;
    } else {
      if (this.buckets.size >= PRUNE_AT) this.prune(t);
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    }
    const need = Math.min(cost, this.burst);
    if (b.tokens < need) return Math.max(1, Math.ceil((need - b.tokens) / this.rate));
    b.tokens -= cost;
    return 0;
  }

  /** A bucket that has refilled is the same as no bucket. */
  private prune(t: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((t - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(k);
  }
}
