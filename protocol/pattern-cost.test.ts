import { describe, expect, it } from "vitest";
import { FanoutError } from "./errors.js";
import { checkPatternCost } from "./pattern-cost.js";

function refusal(pattern: string, maxStars: number): FanoutError | undefined {
  try {
    checkPatternCost(pattern, maxStars);
    return undefined;
  } catch (e) {
    if (e instanceof FanoutError) return e;
    throw e;
  }
}

describe("checkPatternCost", () => {
  it("accepts patterns with at most maxStars runs of *", () => {
    expect(refusal("user:42:events", 0)).toBeUndefined();
    expect(refusal("user:*:events", 1)).toBeUndefined();
    expect(refusal("a*b*c", 2)).toBeUndefined();
    expect(refusal("*".repeat(500), 1)).toBeUndefined();
    expect(refusal("a**b***c", 2)).toBeUndefined();
  });

  it("counts runs as the matcher reads them: escaped and bracketed stars are literals", () => {
    expect(refusal("\\*\\*\\*", 0)).toBeUndefined();
    expect(refusal("[*][*]", 0)).toBeUndefined();
    // `[a-]` takes `]` as a range end, so the class runs on to the next `]`.
    expect(refusal("[a-]*]", 0)).toBeUndefined();
    expect(refusal("[a-]*]*", 0)?.code).toBe("pattern_too_complex");
    expect(refusal("[*", 0)).toBeUndefined();
    expect(refusal("*\\**", 1)?.code).toBe("pattern_too_complex");
  });

  it("refuses more runs with a 400 pattern_too_complex", () => {
    const e = refusal("a*b*c*d", 2);
    expect(e?.status).toBe(400);
    expect(e?.code).toBe("pattern_too_complex");
    expect(e?.message).toMatch(/3 .*at most 2/);
    expect(refusal("*?*?*?*?*?*?*?*?*?*?*?*", 10)?.code).toBe("pattern_too_complex");
  });
});
