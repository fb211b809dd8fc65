import { globMatchBytes, toBytes } from "../../protocol/glob.js";

/**
 * Glob patterns indexed by their literal prefix (the text before the first `*`, `?`, `[` or
 * `\`), so routing a channel checks only the patterns that can match it: with a thousand
 * patterns like `user:<id>:*`, one channel costs a few map lookups and one glob match, not a
 * thousand matches. Patterns starting with a metacharacter (empty prefix) are always checked.
 */
export class PatternIndex {
  private readonly byPrefix = new Map<string, Map<string, Uint8Array>>();
  /** Prefix lengths in use, so a channel is cut at each of them once. */
  private readonly lengths = new Map<number, number>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(pattern: string): boolean {
    return this.byPrefix.get(literalPrefix(pattern))?.has(pattern) ?? false;
  }

  add(pattern: string): void {
    const prefix = literalPrefix(pattern);
    let group = this.byPrefix.get(prefix);
    if (!group) {
      group = new Map();
      this.byPrefix.set(prefix, group);
      this.lengths.set(prefix.length, (this.lengths.get(prefix.length) ?? 0) + 1);
    }
    if (group.has(pattern)) return;
    group.set(pattern, toBytes(pattern));
    this.count++;
  }

  delete(pattern: string): void {
    const prefix = literalPrefix(pattern);
    const group = this.byPrefix.get(prefix);
    if (!group?.delete(pattern)) return;
    this.count--;
    if (group.size > 0) return;
    this.byPrefix.delete(prefix);
    const n = (this.lengths.get(prefix.length) ?? 1) - 1;
    if (n > 0) this.lengths.set(prefix.length, n);
    else this.lengths.delete(prefix.length);
  }

  /** Calls `hit` for every pattern matching `channel`, with Redis's semantics. */
  forEachMatch(channel: string, hit: (pattern: string) => void): void {
    if (this.count === 0) return;
    let bytes: Uint8Array | undefined;
    for (const len of this.lengths.keys()) {
      if (len > channel.length) continue;
      const group = this.byPrefix.get(channel.slice(0, len));
      if (!group) continue;
      bytes ??= toBytes(channel);
      for (const [pattern, pb] of group) if (globMatchBytes(pb, bytes)) hit(pattern);
    }
  }
}

/** The literal text a pattern must start with. A string prefix is also a byte prefix: metacharacters are ASCII. */
export function literalPrefix(pattern: string): string {
  const i = pattern.search(/[*?[\\]/);
  return i < 0 ? pattern : pattern.slice(0, i);
}
