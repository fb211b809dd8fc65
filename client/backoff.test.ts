import { describe, expect, it } from "vitest";
import { backoffDelay } from "./backoff.js";
import { parseRetryAfter } from "./errors.js";

describe("backoffDelay", () => {
  it("draws uniformly from a window that doubles per attempt up to the cap", () => {
    expect(backoffDelay(0, 100, 1000, 0, () => 0.999)).toBe(100);
    expect(backoffDelay(3, 100, 1000, 0, () => 0.5)).toBe(400);
    expect(backoffDelay(10, 100, 1000, 0, () => 1)).toBe(1000);
    expect(backoffDelay(10_000, 100, 1000, 0, () => 1)).toBe(1000);
    expect(backoffDelay(5, 100, 1000, 0, () => 0)).toBe(0);
  });

  it("treats Retry-After as a floor and jitters on top of it", () => {
    expect(backoffDelay(0, 100, 1000, 5000, () => 0)).toBe(5000);
    expect(backoffDelay(0, 100, 1000, 5000, () => 1)).toBe(5100);
  });

  it("spreads a herd of clients across the window", () => {
    const delays = Array.from({ length: 1000 }, () => backoffDelay(0, 2000, 30_000));
    const buckets = [0, 0, 0, 0];
    for (const d of delays) buckets[Math.min(3, Math.floor(d / 500))]++;
    for (const b of buckets) expect(b).toBeGreaterThan(150);
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("2")).toBe(2000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter("soon")).toBeUndefined();
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(parseRetryAfter("Tue, 01 Jan 2030 00:00:03 GMT", now)).toBe(3000);
    expect(parseRetryAfter("Tue, 01 Jan 2020 00:00:03 GMT", now)).toBe(0);
  });
});
