import { describe, expect, it } from "vitest";
import { jsonDepthExceeds } from "./json-depth.js";

describe("jsonDepthExceeds", () => {
  it("counts arrays and objects, not brackets inside strings", () => {
    expect(jsonDepthExceeds(`{"a":[1,{"b":2}]}`, 3)).toBe(false);
    expect(jsonDepthExceeds(`{"a":[1,{"b":2}]}`, 2)).toBe(true);
    expect(jsonDepthExceeds(`"[[[[[[[["`, 1)).toBe(false);
    expect(jsonDepthExceeds(`["\\"[[[["]`, 1)).toBe(false);
    expect(jsonDepthExceeds(`[["\\\\"],[[1]]]`, 2)).toBe(true);
  });

  it("measures documents far deeper than JSON.parse survives without recursing itself", () => {
    const deep = "[".repeat(1_000_000) + "]".repeat(1_000_000);
    expect(() => JSON.stringify(JSON.parse(deep))).toThrow(RangeError);
    expect(jsonDepthExceeds(deep, 64)).toBe(true);
    expect(jsonDepthExceeds("[".repeat(64) + "]".repeat(64), 64)).toBe(false);
  });
});
