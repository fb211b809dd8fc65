import { describe, expect, it } from "vitest";
import { globMatch } from "../../protocol/glob.js";
import { prng } from "../../test/support/prng.js";
import { PatternIndex, literalPrefix } from "./pattern-index.js";

describe("PatternIndex", () => {
  it("cuts the literal prefix at the first metacharacter", () => {
    expect(literalPrefix("user:42:*")).toBe("user:42:");
    expect(literalPrefix("a?b")).toBe("a");
    expect(literalPrefix("[ab]c")).toBe("");
    expect(literalPrefix("x\\*y")).toBe("x");
    expect(literalPrefix("plain")).toBe("plain");
  });

  it("finds exactly the patterns the Redis matcher finds, through adds and deletes", () => {
    const rnd = prng(7);
    const pieces = ["a", "b", ":", "é", "*", "?", "[ab]", "[^a]", "\\*", "user:", "1", "日"];
    const gen = (n: number, meta: boolean) =>
      Array.from({ length: 1 + Math.floor(rnd() * n) }, () => {
        const p = pieces[Math.floor(rnd() * pieces.length)];
        return meta || !/[*?[\\]/.test(p) ? p : "a";
      }).join("");
    const index = new PatternIndex();
    const live = new Set<string>();
    const channels = Array.from({ length: 150 }, () => gen(6, false));
    for (let round = 0; round < 40; round++) {
      for (let k = 0; k < 10; k++) {
        const p = gen(5, true);
        index.add(p);
        live.add(p);
      }
      for (const p of [...live]) {
        if (rnd() < 0.2) {
          index.delete(p);
          live.delete(p);
        }
      }
      expect(index.size).toBe(live.size);
      for (const ch of channels) {
        const got: string[] = [];
        index.forEachMatch(ch, (p) => got.push(p));
        const want = [...live].filter((p) => globMatch(p, ch));
        expect(got.sort(), `${ch} round ${round}`).toEqual(want.sort());
      }
    }
  });
});
