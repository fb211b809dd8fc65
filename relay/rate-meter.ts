const WINDOW_SECONDS = 10;

/** Per-second rates over a sliding 10 s window, in fixed one-second buckets (no allocation per event). */
export class RateMeter {
  private readonly inBuckets = new Float64Array(WINDOW_SECONDS);
  private readonly outBuckets = new Float64Array(WINDOW_SECONDS);
  private second = Math.floor(Date.now() / 1000);

  markIn(): void {
    this.roll();
    this.inBuckets[this.second % WINDOW_SECONDS]++;
  }

  mark(out: number): void {
    this.roll();
    this.outBuckets[this.second % WINDOW_SECONDS] += out;
  }

  snapshot(): { inPerSecond: number; outPerSecond: number; windowSeconds: number } {
    this.roll();
    const sum = (b: Float64Array) => b.reduce((a, v) => a + v, 0);
    return { inPerSecond: sum(this.inBuckets) / WINDOW_SECONDS, outPerSecond: sum(this.outBuckets) / WINDOW_SECONDS, windowSeconds: WINDOW_SECONDS };
  }

  private roll(): void {
    const now = Math.floor(Date.now() / 1000);
    if (now === this.second) return;
    for (let s = this.second + 1; s <= now && s <= this.second + WINDOW_SECONDS; s++) {
      this.inBuckets[s % WINDOW_SECONDS] = 0;
      this.outBuckets[s % WINDOW_SECONDS] = 0;
    }
    this.second = now;
  }
}
