import { describe, expect, it } from "vitest";
import { bucketDelta, quantile } from "./latency-percentiles.js";

describe("latency percentiles from histogram buckets", () => {
  const b = (...counts: number[]) => [0.001, 0.01, 0.1, Infinity].map((le, i) => ({ le, count: counts[i] }));

  it("interpolate inside the bucket holding the rank, as histogram_quantile does", () => {
    // 100 observations: 50 under 1 ms, 40 in (1, 10] ms, 10 in (10, 100] ms.
    const h = b(50, 90, 100, 100);
    expect(quantile(0.5, h)).toBeCloseTo(0.001);
    expect(quantile(0.7, h)).toBeCloseTo(0.001 + 0.009 * (20 / 40));
    expect(quantile(0.99, h)).toBeCloseTo(0.01 + 0.09 * (9 / 10));
  });

  it("answer the highest finite bound for ranks past it, nothing for no observations", () => {
    expect(quantile(0.99, b(0, 0, 0, 5))).toBe(0.1);
    expect(quantile(0.5, b(0, 0, 0, 0))).toBeUndefined();
  });

  it("take the observations between two cumulative snapshots", () => {
    expect(bucketDelta(b(5, 10, 10, 10), b(5, 5, 5, 5))).toEqual(b(0, 5, 5, 5));
    expect(bucketDelta(b(1, 2, 3, 4), undefined)).toEqual(b(1, 2, 3, 4));
  });
});
