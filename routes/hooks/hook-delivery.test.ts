import { describe, expect, it } from "vitest";
import { FanoutError } from "../../protocol/errors.js";
import { claimFor } from "./hook-delivery.js";

const DAY = 86_400;

describe("claimFor", () => {
  it("holds a dated delivery's claim until its acceptance window closes, so no replay is ever both new and fresh", async () => {
    const now = 1_800_000_000_000;
    const at = now - 3600_000;
    const { ttlSeconds } = await claimFor("github", { key: "k", at }, DAY, now);
    expect(now + ttlSeconds * 1000).toBeGreaterThanOrEqual(at + DAY * 1000);
    // Signed a little ahead of this clock: the claim outlasts the window measured from `at`.
    const ahead = await claimFor("generic", { key: "k", at: now + 200_000, windowSeconds: 300, aheadSeconds: 300 }, DAY, now);
    expect(now + ahead.ttlSeconds * 1000).toBeGreaterThanOrEqual(now + 500_000);
  });

  it("refuses a delivery dated before the window (or too far ahead) as stale", async () => {
    const now = 1_800_000_000_000;
    for (const d of [{ key: "k", at: now - DAY * 1000 - 1 }, { key: "k", at: now - 301_000, windowSeconds: 300 }, { key: "k", at: now + 301_000, windowSeconds: 300, aheadSeconds: 300 }]) {
      const err = await claimFor("p", d, DAY, now).catch((e: unknown) => e);
      expect(err, JSON.stringify(d)).toBeInstanceOf(FanoutError);
      expect((err as FanoutError).code).toBe("stale_delivery");
    }
  });

  it("remembers an undated delivery for the dedupe window, under a bounded digest that names nothing", async () => {
    const { claim, ttlSeconds } = await claimFor("github", { key: `push:refs/heads/${"x".repeat(5000)}:a:b` }, DAY);
    expect(ttlSeconds).toBe(DAY);
    expect(claim).toMatch(/^github:[0-9a-f]{64}$/);
    expect((await claimFor("github", { key: "a" }, DAY)).claim).not.toBe((await claimFor("vercel", { key: "a" }, DAY)).claim);
  });
});
