import { describe, expect, it } from "vitest";
import { balancedTags } from "./cluster-tags.js";
import { partitionOf } from "./partition.js";
import { mergeScriptCalls, publishScriptArgs, splitScriptReply, type LogSettings } from "./publish-script.js";

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

describe("grouped script calls (group commit)", () => {
  it("keeps the first header, every message in order, the flag key once and the counts last", () => {
    const settings = { ...base, tags: balancedTags("fanout", 16), pubsub: "sharded" as const };
    const a = publishScriptArgs([{ channel: "a", data: "1" }, { channel: "a", data: "2" }], settings);
    const b = publishScriptArgs([{ channel: "a", data: "3", id: "x" }], settings);
    const m = mergeScriptCalls([a, b]);
    expect(m.keys).toEqual([...a.keys.slice(0, 6), ...b.keys.slice(0, 3), a.keys[6]]);
    expect(m.args).toEqual([...a.args, ...b.args.slice(7), "2,1"]);
  });

  it("splits the reply per request; a request with an error reply gets the error", () => {
    const a = publishScriptArgs([{ channel: "a", data: "1" }, { channel: "b", data: "2" }], base);
    const b = publishScriptArgs([{ channel: "c", data: "3" }], base);
    const err = new Error("WRONGTYPE");
    expect(splitScriptReply([a, b], [[0, "1-1-0", 0], [0, "2-1-0", 0], err])).toEqual([[[0, "1-1-0", 0], [0, "2-1-0", 0]], err]);
    expect(() => splitScriptReply([a, b], [[0, "1-1-0", 0]])).toThrow(/unexpected/);
  });
});
