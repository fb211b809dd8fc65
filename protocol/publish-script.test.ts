import { describe, expect, it } from "vitest";
import { balancedTags } from "./cluster-tags.js";
import { partitionOf } from "./partition.js";
import { publishScriptArgs, type LogSettings } from "./publish-script.js";

const base: LogSettings = { prefix: "fanout", partitions: 16, maxLen: 1000, ttlMs: 0, dedupeSeconds: 60 };

describe("publish script arguments", () => {
  it("classic: three keys per message with the plain tag, mode and empty shard names in ARGV", () => {
    const { keys, args } = publishScriptArgs([{ channel: "a", data: "1" }], base);
    const p = partitionOf("a", 16);
    expect(keys).toEqual([`{fanout:${p}}:log`, `{fanout:${p}}:idem:a\u001f`, `{fanout:${p}}:mac`]);
    expect(args.slice(4, 7)).toEqual(["classic", "", ""]);
    expect(args.slice(7)).toEqual([String(p), "a", "", "1", "", ""]);
  });

  it("sharded: the balanced tag on every key, the pattern flag key last, shard channel names in ARGV", () => {
    const tags = balancedTags("fanout", 16);
    const p = partitionOf("a", 16);
    const t = tags[p];
    const { keys, args } = publishScriptArgs([{ channel: "a", data: "1", id: "x" }, { channel: "a", data: "2" }], { ...base, tags, pubsub: "sharded" });
    expect(keys).toEqual([`{${t}}:log`, `{${t}}:idem:a\u001fx`, `{${t}}:mac`, `{${t}}:log`, `{${t}}:idem:a\u001f`, `{${t}}:mac`, `{${t}}:patterns`]);
    expect(args.slice(4, 7)).toEqual(["sharded", `{${t}}:c:`, `{${t}}:all`]);
  });

  it("sharded: one partition per call (SPUBLISH runs in the keys' slot)", () => {
    const chans = ["a", "b", "c", "d", "e"];
    const other = chans.find((c) => partitionOf(c, 16) !== partitionOf("a", 16))!;
    expect(() => publishScriptArgs([{ channel: "a", data: "1" }, { channel: other, data: "2" }], { ...base, tags: balancedTags("fanout", 16), pubsub: "both" })).toThrow(/one partition/);
  });
});
