import { FanoutError } from "./errors.js";
import { toBytes } from "./glob.js";
import { parseGlob, starRuns } from "./pattern-scope.js";

/**
 * Refuses a subscription pattern whose `*` runs exceed `maxStars`: every broker message is
 * matched against every pattern, and a glob's matching cost grows with its `*` runs (each is
 * a level of backtracking; Redis stops matching past 1000). Runs are counted as the matcher
 * reads the glob: `**` is one run, while `\*` and `[*]` are literal stars and do not count.
 */
export function checkPatternCost(pattern: string, maxStars: number): void {
  const runs = starRuns(parseGlob(toBytes(pattern)));
  if (runs > maxStars) {
    throw new FanoutError(400, "pattern_too_complex", `pattern has ${runs} wildcard (*) runs; at most ${maxStars} are allowed`);
  }
}
