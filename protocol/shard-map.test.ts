import { describe, expect, it } from "vitest";
import { jumpHash, shardOfPartition, ShardMap, splitmix64 } from "./shard-map.js";

describe("partition → shard rule", () => {
  it("matches the published test vector (docs/protocol.md, Independent shards)", () => {
    // 16 partitions over 3 shards: the shard of partitions 0..15.
    expect(Array.from({ length: 16 }, (_, p) => shardOfPartition(p, 3)).join("")).toBe("2001220102201211");
    expect(Array.from({ length: 4 }, (_, p) => shardOfPartition(p, 2)).join("")).toBe("1001");
    expect(Array.from({ length: 8 }, (_, p) => shardOfPartition(p, 2)).join("")).toBe("10010001");
    expect(splitmix64(0n).toString(16)).toBe("e220a8397b1dcdaf");
  });

  it("is Jump consistent hashing: growing the list only moves partitions to the new shard", () => {
    for (let n = 1; n < 8; n++) {
      for (let p = 0; p < 64; p++) {
        const before = shardOfPartition(p, n);
        const after = shardOfPartition(p, n + 1);
        expect(after === before || after === n).toBe(true);
      }
    }
    // The paper's C++ reference (compiled with gcc), for 10 and 1000 buckets.
    const keys = [1n, 42n, 0xdeadbeefn, 0xe220a8397b1dcdafn, (1n << 64n) - 1n];
    expect(keys.map((k) => jumpHash(k, 10))).toEqual([6, 2, 5, 8, 9]);
    expect(keys.map((k) => jumpHash(k, 1000))).toEqual([549, 571, 285, 258, 313]);
  });

  it("lists each shard's partitions and the shards left empty", () => {
    const m = new ShardMap(16, 3);
    expect(m.partitionsOf.map((ps) => ps.length)).toEqual([5, 5, 6]);
    expect(m.emptyShards()).toEqual([]);
    expect(new ShardMap(4, 4).emptyShards()).toEqual([2]);
  });
});
