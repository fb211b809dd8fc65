import { FanoutError } from "./errors.js";
import { toBytes } from "./glob.js";
import { MAX_CHANNEL_BYTES } from "./names.js";
import { parseGlob, starRuns } from "./pattern-scope.js";

const STAR = 0x2a, LBRACKET = 0x5b, RBRACKET = 0x5d, BACKSLASH = 0x5c, CARET = 0x5e, DASH = 0x2d;

/**
 * Worst-case work (matcher loop iterations, see `globMatchSteps` in glob.ts) of matching
 * `pattern` against any channel of up to `channelBytes` bytes, as Redis's `stringmatchlen`
 * (and the embedded broker's port of it) does on every PUBLISH, for every pattern.
 *
 * Why this bound holds: split the pattern into segments around its `*` runs. A `*` tries
 * the rest of the pattern at each channel position; with the `skipLonger` cut-off (Redis
 * 6.0.18, 6.2.11, 7.0.9 and later: CVE-2022-36021; older Redis is exponential in the number
 * of `*` runs) a `*` whose scan reaches the end of the channel fails the whole match, so a scan
 * ends at the first position where its segment matches (handing over to the next `*`, which
 * decides the result alone) or at the end. The scans of successive `*` runs therefore cover
 * disjoint channel positions — at most `channelBytes` in all — and each position costs one
 * attempt at that run's segment: at most its bytes, plus the next run's bytes (skipped when
 * the channel ends there), plus one. Everything else (the text before the first `*`, each
 * run entered once) is bounded by the pattern's length. Hence
 *
 *     cost ≤ patternBytes + channelBytes × max over scanning runs (1 + segment + next run)
 *
 * A trailing `*` never scans (it matches the rest at once), so `user:42:*` costs its length,
 * while `*` followed by a 200-byte literal costs about 1024 × 200. The number of stars adds
 * little: `*a*a*a*a*a*a*a*` + literal costs what `*` + literal costs. The test beside this
 * file checks the bound against the matcher's own step count.
 */
export function patternCost(pattern: string | Uint8Array, channelBytes = MAX_CHANNEL_BYTES): number {
  const p = typeof pattern === "string" ? toBytes(pattern) : pattern;
  const n = p.length;
  let widest = 0;
  // Bytes of the current segment after a `*` run (-1: before the first run).
  let segment = -1;
  let i = 0;
  while (i < n) {
    if (p[i] === STAR) {
      let run = 0;
      while (i < n && p[i] === STAR) {
        i++;
        run++;
      }
      // The previous run scanned (its segment was not empty): its attempts end on this run.
      if (segment > 0) widest = Math.max(widest, 1 + segment + run);
      segment = 0;
      continue;
    }
    const width = tokenWidth(p, i);
    if (segment >= 0) segment += width;
    i += width;
  }
  if (segment > 0) widest = Math.max(widest, 1 + segment);
  return n + 1 + channelBytes * widest;
}

/**
 * Bytes of the one-byte token at `i` (a literal, `\x`, `?`, or a whole class), read as the
 * matcher reads it: what one attempt at it costs at most.
 */
function tokenWidth(p: Uint8Array, i: number): number {
  const n = p.length;
  if (p[i] === BACKSLASH) return n - i >= 2 ? 2 : 1;
  if (p[i] !== LBRACKET) return 1;
  let j = i + 1;
  if (j < n && p[j] === CARET) j++;
  for (;;) {
    if (n - j >= 2 && p[j] === BACKSLASH) j += 2;
    else if (j < n && p[j] === RBRACKET) return j + 1 - i;
    // Unclosed: the class runs to the end, and the matcher spends one more turn finding that out.
    else if (j >= n) return n - i + 1;
    else if (n - j >= 3 && p[j + 1] === DASH) j += 3;
    else j++;
  }
}

/** What one connection's patterns may cost; see `patternCost`. */
export interface PatternCostLimits {
  /** Most `*` runs in one pattern (`FANOUT_MAX_PATTERN_STARS`): what the authorization check's work grows with. */
  maxStars: number;
  /** Most bytes in one pattern (`FANOUT_MAX_PATTERN_BYTES`). */
  maxBytes: number;
  /** Most worst-case matching steps of one pattern (`FANOUT_MAX_PATTERN_COST`). */
  maxCost: number;
  /** Most worst-case matching steps of all of one connection's (or ticket's) patterns together (`FANOUT_MAX_CONNECTION_PATTERN_COST`). */
  maxConnectionCost: number;
}

/**
 * Refuses patterns one connection may not hold: too long (`pattern_too_long`), or too
 * costly to match alone or together (`pattern_too_complex`). Returns each pattern's cost.
 */
export function checkPatternCosts(patterns: readonly string[], limits: PatternCostLimits): number[] {
  let total = 0;
  const costs = patterns.map((pattern) => {
    const bytes = toBytes(pattern);
    if (bytes.length > limits.maxBytes) {
      throw new FanoutError(400, "pattern_too_long", `a pattern may be at most ${limits.maxBytes} bytes (FANOUT_MAX_PATTERN_BYTES)`);
    }
    const runs = starRuns(parseGlob(bytes));
    if (runs > limits.maxStars) {
      throw new FanoutError(400, "pattern_too_complex", `pattern has ${runs} wildcard (*) runs; at most ${limits.maxStars} are allowed (FANOUT_MAX_PATTERN_STARS)`);
    }
    const cost = patternCost(bytes);
    if (cost > limits.maxCost) {
      throw new FanoutError(
        400,
        "pattern_too_complex",
        `pattern ${JSON.stringify(pattern.slice(0, 100))} may cost ${cost} matching steps per message; at most ${limits.maxCost} are allowed (FANOUT_MAX_PATTERN_COST): shorten the text after its *`,
      );
    }
    total += cost;
    return cost;
  });
  if (total > limits.maxConnectionCost) {
    throw new FanoutError(400, "pattern_too_complex", `these patterns may cost ${total} matching steps per message together; at most ${limits.maxConnectionCost} are allowed per connection (FANOUT_MAX_CONNECTION_PATTERN_COST)`);
  }
  return costs;
}
