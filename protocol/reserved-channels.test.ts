import { describe, expect, it } from "vitest";
import { isReservedChannel, isReservedPattern } from "./reserved-channels.js";
import { parseGlob, patternWithin } from "./pattern-scope.js";
import { toBytes } from "./glob.js";
import { prng } from "../test/support/prng.js";

describe("reserved relay channels", () => {
  it("reserves exactly <prefix>:relay:*", () => {
    expect(isReservedChannel("fanout:relay:ab12", "fanout")).toBe(true);
    expect(isReservedChannel("fanout:relay:", "fanout")).toBe(true);
    expect(isReservedChannel("fanout:relay", "fanout")).toBe(false);
    expect(isReservedChannel("x:fanout:relay:a", "fanout")).toBe(false);
  });

  it("refuses the patterns that can only match there", () => {
    const cases: Array<[string, boolean]> = [
      ["fanout:relay:*", true],
      ["fanout:rel[a]y:?*", true],
      ["fanout:re\\lay:*", true],
      ["[f]anout:relay:x", true],
      ["fanout:relay:", true],
      ["fanout:relay", false],
      ["fanout:rel*", false],
      ["*", false],
      ["fanout:rel[ab]y:*", false],
      ["?anout:relay:x", false],
      ["fanout:*", false],
    ];
    for (const [p, want] of cases) expect(isReservedPattern(p, "fanout"), p).toBe(want);
  });

  it("agrees with the general inclusion check on random patterns (seeded)", () => {
    const rand = prng(91);
    const alphabet = ["f", "a", "n", "o", "u", "t", ":", "r", "e", "l", "y", "*", "?", "[", "]", "^", "-", "\\", "x"];
    let reserved = 0;
    for (let i = 0; i < 4000; i++) {
      // Mostly the prefix with a few edits, so both answers occur often.
      let p = rand() < 0.7 ? "fanout:relay:x" : "";
      const edits = 1 + Math.floor(rand() * 3);
      for (let k = 0; k < edits; k++) {
        const at = Math.floor(rand() * (p.length + 1));
        const c = alphabet[Math.floor(rand() * alphabet.length)];
        p = rand() < 0.5 ? p.slice(0, at) + c + p.slice(at + 1) : p.slice(0, at) + c + p.slice(at);
      }
      // A pattern that matches nothing is vacuously "within" for the general check; the
      // relay lets it through (it delivers nothing).
      if (parseGlob(toBytes(p)).some((t) => t.kind === "byte" && t.set.every((b) => b === 0))) continue;
      if (p.length === 0) continue;
      const want = patternWithin(p, ["fanout:relay:*"]);
      expect(isReservedPattern(p, "fanout"), p).toBe(want);
      if (want) reserved++;
    }
    expect(reserved).toBeGreaterThan(100);
  });
});
