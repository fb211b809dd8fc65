import { describe, expect, it } from "vitest";
import { globMatchSteps, toBytes } from "./glob.js";
import { checkPatternCosts, patternCost, type PatternCostLimits } from "./pattern-cost.js";
import { prng } from "../test/support/prng.js";
import { thrownCode } from "../test/support/thrown.js";

const DEFAULTS: PatternCostLimits = { maxStars: 8, maxBytes: 256, maxCost: 100_000, maxConnectionCost: 1_000_000 };

function refusal(patterns: string[], limits: Partial<PatternCostLimits> = {}): string | undefined {
  return thrownCode(() => checkPatternCosts(patterns, { ...DEFAULTS, ...limits }));
}

/** The attack: many `*` runs, then a long literal that nearly matches everywhere. */
const ATTACK = `*a*a*a*a*a*a*a*${"a".repeat(240)}b`;

/** Pieces for random globs, every kind of token the matcher reads (unclosed classes too). */
const PIECES = ["a", "a", "b", "?", "*", "*", "**", "\\a", "\\*", "\\", "[ab]", "[^a]", "[a-b]", "[b-a]", "[]a]", "[\\a]", "[a", "[^", "[a-"];

describe("patternCost", () => {
  it("is never below the matcher's real step count (seeded fuzz, adversarial channels)", () => {
    const rnd = prng(0xc057);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    let checked = 0;
    let tightest = 0;
    for (let round = 0; round < 3000; round++) {
      let pattern = "";
      const pieces = 1 + Math.floor(rnd() * 12);
      for (let i = 0; i < pieces; i++) pattern += pick(PIECES);
      const p = toBytes(pattern);
      const n = 1 + Math.floor(rnd() * (round % 10 === 0 ? 1024 : 64));
      // Channels built to keep the matcher busy: runs of `a` with a `b` here and there.
      const channels = [
        "a".repeat(n),
        "a".repeat(n - 1) + "b",
        Array.from({ length: n }, () => (rnd() < 0.85 ? "a" : "b")).join(""),
        Array.from({ length: n }, () => pick(["a", "b", "*", "["])).join(""),
      ];
      for (const ch of channels) {
        const steps = globMatchSteps(p, toBytes(ch));
        const bound = patternCost(p, ch.length);
        if (steps > bound) expect.fail(`${JSON.stringify(pattern)} on ${JSON.stringify(ch.slice(0, 40))}… (${ch.length} bytes): ${steps} steps > bound ${bound}`);
        tightest = Math.max(tightest, steps / bound);
        checked++;
      }
    }
    expect(checked).toBe(12_000);
    // The bound is reached within a small factor somewhere, so it is not vacuous.
    expect(tightest).toBeGreaterThan(0.5);
  });

  it("prices the issue's attack near its real cost on a 1 KiB channel, and ordinary patterns at almost nothing", () => {
    const p = toBytes(ATTACK);
    const steps = globMatchSteps(p, toBytes("a".repeat(1024)));
    const cost = patternCost(ATTACK);
    expect(cost).toBeGreaterThanOrEqual(steps);
    expect(steps).toBeGreaterThan(cost / 2);
    // Stars add nothing: one `*` before the same literal costs the same.
    expect(patternCost(`*${"a".repeat(240)}b`)).toBeGreaterThan(cost - 100);
    // A trailing `*` never scans; a `*` in the middle scans with the text after it.
    expect(patternCost("user:42:*")).toBeLessThan(20);
    expect(patternCost("chat:[a-z]*")).toBeLessThan(20);
    expect(patternCost("user:*:notifications")).toBe(21 + 1024 * 15);
  });
});

describe("checkPatternCosts", () => {
  it("accepts ordinary patterns", () => {
    expect(refusal(["user:*:notifications", "chat:[a-z]*", "user:42:*", "*", "orders:*:status:*", "tenant:?:events", "*.created"])).toBeUndefined();
    expect(refusal(Array.from({ length: 100 }, (_, i) => `user:${i}:*`))).toBeUndefined();
    expect(refusal(Array.from({ length: 60 }, (_, i) => `room:*:user:${i}`))).toBeUndefined();
  });

  it("refuses the issue's attack per pattern, and per connection when each pattern alone fits", () => {
    expect(refusal([ATTACK])).toBe("400 pattern_too_complex");
    const medium = (i: number) => `*${"a".repeat(80)}${i}`;
    expect(refusal([medium(0)])).toBeUndefined();
    expect(refusal(Array.from({ length: 12 }, (_, i) => medium(i)))).toBe("400 pattern_too_complex");
  });

  it("still counts runs of * (FANOUT_MAX_PATTERN_STARS) as the matcher reads them, and bytes", () => {
    expect(refusal(["a*b*c*d"], { maxStars: 2 })).toBe("400 pattern_too_complex");
    expect(refusal(["a**b***c"], { maxStars: 2 })).toBeUndefined();
    expect(refusal(["\\*\\*\\*", "[*][*]", "[a-]*]", "[*"], { maxStars: 0 })).toBeUndefined();
    expect(refusal(["[a-]*]*"], { maxStars: 0 })).toBe("400 pattern_too_complex");
    expect(refusal(["x".repeat(257)])).toBe("400 pattern_too_long");
  });
});
