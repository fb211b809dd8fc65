/**
 * Log-linear latency histogram in microseconds: exact below 128 µs, then 64 sub-buckets per
 * power of two (≤ 1.6 % error). Fixed size, no allocation per sample, mergeable across processes.
 */
const SUB = 64;
const LINEAR = 128; // values < LINEAR are stored exactly
const MAX_POW = 40;

export class Histogram {
  counts: Float64Array;
  n = 0;
  max = 0;
  sum = 0;

  constructor() {
    this.counts = new Float64Array(LINEAR + SUB * MAX_POW);
  }

  static index(v: number): number {
    if (v < LINEAR) return v < 0 ? 0 : Math.floor(v);
    const p = Math.floor(Math.log2(v)); // ≥ 7
    const base = 2 ** p;
    const sub = Math.floor(((v - base) / base) * SUB);
    return Math.min(LINEAR + (p - 7) * SUB + sub, LINEAR + SUB * MAX_POW - 1);
  }

  /** Lower bound of bucket i (µs). */
  static value(i: number): number {
    if (i < LINEAR) return i;
    const j = i - LINEAR;
    const p = Math.floor(j / SUB) + 7;
    const base = 2 ** p;
    return base + ((j % SUB) + 0.5) * (base / SUB);
  }

  record(v: number, count = 1): void {
    this.counts[Histogram.index(v)] += count;
    this.n += count;
    this.sum += v * count;
    if (v > this.max) this.max = v;
  }

  merge(o: { counts: ArrayLike<number>; n: number; max: number; sum: number }): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += o.counts[i];
    this.n += o.n;
    this.sum += o.sum;
    if (o.max > this.max) this.max = o.max;
  }

  quantile(q: number): number {
    if (this.n === 0) return NaN;
    const target = Math.ceil(q * this.n);
    let acc = 0;
    for (let i = 0; i < this.counts.length; i++) {
      acc += this.counts[i];
      if (acc >= target) return Math.min(Histogram.value(i), this.max);
    }
    return this.max;
  }

  toJSON(): { counts: number[]; n: number; max: number; sum: number } {
    return { counts: Array.from(this.counts), n: this.n, max: this.max, sum: this.sum };
  }
}
