import { describe, expect, it } from "vitest";
import { randomToken } from "./random-token.js";

describe("randomToken", () => {
  it("gives base64url text of the asked length, never the same twice, across pool refills", () => {
    const seen = new Set<string>();
    // 24-byte tokens: a 4 KB pool is refilled every 170, so this crosses many refills.
    for (let i = 0; i < 2000; i++) {
      const t = randomToken(24);
      expect(t).toMatch(/^[A-Za-z0-9_-]{32}$/);
      seen.add(t);
    }
    expect(seen.size).toBe(2000);
    expect(randomToken(12)).toMatch(/^[A-Za-z0-9_-]{16}$/);
  });

  it("does not hand out zeroed (spent) bytes", () => {
    // A token of 24 zero bytes is "AAAA…": with real randomness it never comes up.
    for (let i = 0; i < 1000; i++) expect(randomToken(24)).not.toBe("A".repeat(32));
  });
});
