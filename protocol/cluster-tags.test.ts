import { describe, expect, it } from "vitest";
import { balancedTags, keySlot } from "./cluster-tags.js";

describe("Cluster hash tags", () => {
  it("computes slots as CLUSTER KEYSLOT does (examples from the Cluster specification)", () => {
    expect(keySlot("123456789")).toBe(12739); // CRC16-XMODEM check value 0x31C3
    expect(keySlot("{user1000}.following")).toBe(keySlot("user1000"));
    expect(keySlot("foo{}{bar}")).toBe(8363); // empty first tag: the whole key is hashed
    expect(keySlot("foo{{bar}}zap")).toBe(keySlot("{bar"));
  });

  it("matches the published test vector (docs/protocol.md, Sharded Pub/Sub on Cluster)", () => {
    const tags = balancedTags("fanout", 16);
    expect(tags.slice(0, 4)).toEqual(["fanout:0:44", "fanout:1:58", "fanout:2:60", "fanout:3:269"]);
    expect(tags.map(keySlot)).toEqual([401, 1432, 2591, 3523, 4679, 5520, 6653, 7573, 8752, 9785, 10628, 11810, 12843, 13812, 14950, 15801]);
  });

  it("spreads partitions evenly over 3 equal masters where the plain tags do not", () => {
    const owner = (s: number) => (s <= 5460 ? 0 : s <= 10922 ? 1 : 2);
    const count = (tags: string[]) => tags.reduce((c, t) => (c[owner(keySlot(t))]++, c), [0, 0, 0]);
    expect(count(balancedTags("fanout", 16))).toEqual([5, 6, 5]);
    expect(count(balancedTags("fanout", 64))).toEqual([21, 22, 21]);
    expect(count(Array.from({ length: 16 }, (_, p) => `fanout:${p}`))).toEqual([8, 5, 3]);
    // Sorted by partition: each partition's slot lies in its own 1/n of the range.
    for (const n of [16, 32, 48, 64]) {
      const slots = balancedTags("x", n).map(keySlot);
      slots.forEach((s, p) => expect(Math.floor((s * n) / 16384)).toBe(p));
    }
  });
});
