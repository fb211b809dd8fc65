/**
 * Differential test: our port of `stringmatchlen` against a real redis-server. Every
 * (pattern, channel) pair of a seeded corpus is PSUBSCRIBEd / PUBLISHed, and the pairs Redis
 * delivers must be exactly the pairs `globMatchBytes` accepts. The same pairs also check the
 * glob parser behind `patternWithin` (a channel escaped into a literal pattern is within
 * `[pattern]` exactly when Redis delivers it).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { RedisServer } from "../test/support/redis-server.js";
import { globMatch, globMatchBytes, toBytes } from "./glob.js";
import { patternWithin } from "./pattern-scope.js";
import { prng } from "../test/support/prng.js";


const HAND_PATTERNS = [
  "", "*", "**", "***", "?", "??", "?*", "*?", "*?*", "a*", "*a", "*a*", "a*b", "a?b", "a*b*c",
  "[abc]", "[^a]", "[a-z]", "[z-a]", "[a-]", "[-a]", "[-]", "[^-]", "[]", "[]a]", "[^]", "[^]]", "[]]",
  "\\*", "\\[", "\\\\", "\\?", "\\a", "[\\]]", "[\\]", "[\\", "[a\\", "[\\-a]", "[a\\-c]", "[a-\\]", "[\\^a]",
  "[", "[^", "[a-", "[a", "[ab", "x[", "x[^", "x[a-", "\\", "a\\", "*\\", "[*]", "[?]", "[[]", "[^[]",
  "[a-c-e]", "[a-cx-z]", "[!-~]", "[~-!]", "[^a-c]", "[^^]", "[^\\^]",
  "[é]", "[^é]", "[a-é]", "[é-a]", "[é-ÿ]", "[日本]", "[^日本]", "[日-本]", "[😀]", "[^😀]", "[😀-a]", "[a-😀]",
  "é", "é*", "*é", "?é", "é?", "日本*", "??????", "😀", "?😀", "[\\é]",
  "*a*a*a*a*a*a*a*a*b", "a*a*a*a*a*a*a*a*a*", "*".repeat(40), `a${"*".repeat(30)}b`, "*?*?*?*?*?*?*?*?",
  "*[ab]*[ab]*[ab]*", "user:*", "user:42:*", "user:42:x?", "orders:[^:]*", "*:events",
];

const HAND_CHANNELS = [
  "", "a", "b", "c", "z", "ab", "abc", "aab", "-", "]", "[", "^", "\\", "*", "?", "a]", "]a", "x[", "x",
  "é", "ée", "aé", "日", "本", "日本", "😀", "a😀", "ÿ", "~", "!", "a-", "-a", "user:42:x1", "user:42:",
  "user:43:x", "orders:events", "orders:a:b", "chat:events", "aaaaaaaaaaaaaaaaaaaab", "aaaaaaaaaaaaaaaaaaaaa",
  "a".repeat(64), "ab".repeat(32),
];

/** Pieces for random globs: literals, metacharacters, escapes and classes (closed or not). */
const PATTERN_PIECES = [
  "a", "b", "c", "-", "]", "^", ":", "é", "日", "😀", "z",
  "*", "*", "**", "?", "\\*", "\\[", "\\\\", "\\", "\\a", "\\?", "\\]",
  "[abc]", "[^a]", "[a-c]", "[c-a]", "[a-]", "[-a]", "[]", "[]a]", "[^]", "[\\]]", "[\\", "[é]", "[^é]",
  "[a-é]", "[é-a]", "[日本]", "[^😀]", "[😀-a]", "[\\-]", "[a\\-c]", "[", "[^", "[a-", "[-]", "[*]", "[a-\\]",
];

const CHANNEL_CHARS = ["a", "b", "c", "z", "-", "]", "[", "^", "\\", "*", "?", ":", "é", "日", "本", "😀", "ÿ", "~"];

/** Bytes for channels that are not UTF-8 (plain PUBLISH allows any bytes); ranges compare signed. */
const RAW_BYTES = [0x00, 0x20, 0x2d, 0x5d, 0x61, 0x62, 0x7f, 0x80, 0xa9, 0xbf, 0xc3, 0xe6, 0xf0, 0xff];

function corpus(): { patterns: string[]; channels: Uint8Array[] } {
  const rnd = prng(0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const patterns = new Set(HAND_PATTERNS);
  while (patterns.size < 450) {
    const n = 1 + Math.floor(rnd() * 6);
    let p = "";
    for (let i = 0; i < n; i++) p += pick(PATTERN_PIECES);
    patterns.add(p);
  }
  const channels = new Map<string, Uint8Array>();
  const addChannel = (b: Uint8Array): void => void channels.set(Buffer.from(b).toString("hex"), b);
  for (const c of HAND_CHANNELS) addChannel(toBytes(c));
  while (channels.size < 380) {
    const n = Math.floor(rnd() * 7);
    let c = "";
    for (let i = 0; i < n; i++) c += pick(CHANNEL_CHARS);
    addChannel(toBytes(c));
  }
  while (channels.size < 450) {
    const n = 1 + Math.floor(rnd() * 4);
    addChannel(Uint8Array.from({ length: n }, () => pick(RAW_BYTES)));
  }
  return { patterns: [...patterns], channels: [...channels.values()] };
}

/** A pattern that matches exactly `channel`: every glob metacharacter escaped. */
const literalPattern = (channel: string): string => channel.replace(/[*?[\\]/g, "\\$&");

const utf8 = new TextDecoder("utf-8", { fatal: true });
function decodeUtf8(b: Uint8Array): string | undefined {
  try {
    return utf8.decode(b);
  } catch {
    return undefined;
  }
}

describe("globMatch agrees with Redis PSUBSCRIBE", () => {
  let server: RedisServer;
  let sub: Redis;
  let pub: Redis;
  const { patterns, channels } = corpus();
  /** `${pattern index}:${channel index}` for every pair Redis delivered. */
  const delivered = new Set<string>();

  beforeAll(async () => {
    server = await RedisServer.start();
    sub = new Redis(server.url);
    pub = new Redis(server.url);
    const patternIndex = new Map(patterns.map((p, i) => [p, i]));
    let received = 0;
    let expected = -1;
    let done = (): void => {};
    const finished = new Promise<void>((resolve) => (done = resolve));
    // The pattern arrives as a string: every corpus pattern is valid UTF-8, so it round-trips.
    sub.on("pmessageBuffer", (pattern: string, _channel: Buffer, message: Buffer) => {
      const pi = patternIndex.get(pattern);
      if (pi === undefined) throw new Error(`unknown pattern ${JSON.stringify(pattern)}`);
      delivered.add(`${pi}:${message.toString()}`);
      received++;
      if (received === expected) done();
    });
    await sub.psubscribe(...patterns);
    const pipeline = pub.pipeline();
    channels.forEach((c, ci) => pipeline.publish(Buffer.from(c), String(ci)));
    const replies = (await pipeline.exec()) ?? [];
    expected = replies.reduce((sum, [err, n]) => {
      if (err) throw err;
      return sum + Number(n);
    }, 0);
    if (received === expected) done();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      finished,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`got ${received} of ${expected} pmessages`)), 15_000);
      }),
    ]);
    clearTimeout(timer);
  });

  afterAll(async () => {
    sub?.disconnect();
    pub?.disconnect();
    await server?.dispose();
  });

  it("covers a corpus with many matches and many misses", () => {
    const pairs = patterns.length * channels.length;
    expect(pairs).toBeGreaterThan(150_000);
    expect(delivered.size).toBeGreaterThan(4_000);
    expect(delivered.size).toBeLessThan(pairs / 2);
  });

  it("matches exactly the pairs Redis delivers", () => {
    const mismatches: string[] = [];
    const patternBytes = patterns.map(toBytes);
    patterns.forEach((p, pi) => {
      channels.forEach((c, ci) => {
        const redis = delivered.has(`${pi}:${ci}`);
        const ours = globMatchBytes(patternBytes[pi], c);
        if (ours !== redis) mismatches.push(`${JSON.stringify(p)} vs ${Buffer.from(c).toString("hex")}: redis ${redis}`);
        const text = decodeUtf8(c);
        if (text !== undefined && globMatch(p, text) !== redis) mismatches.push(`globMatch(${JSON.stringify(p)}, ${JSON.stringify(text)})`);
      });
    });
    expect(mismatches.slice(0, 20)).toEqual([]);
  });

  it("parses globs as Redis does (a literal channel is within [pattern] iff Redis delivers it)", () => {
    // Every third pair keeps this under two seconds; which third varies along both axes.
    const mismatches: string[] = [];
    patterns.forEach((p, pi) => {
      channels.forEach((c, ci) => {
        if ((pi + ci) % 3 !== 0) return;
        const text = decodeUtf8(c);
        if (text === undefined || text === "") return;
        const redis = delivered.has(`${pi}:${ci}`);
        if (patternWithin(literalPattern(text), [p]) !== redis) mismatches.push(`${JSON.stringify(p)} vs ${JSON.stringify(text)}: redis ${redis}`);
      });
    });
    expect(mismatches.slice(0, 20)).toEqual([]);
  });
});
