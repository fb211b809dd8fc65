import { UsageError } from "./usage-error.js";

// Redis PSUBSCRIBE metacharacters: an argument holding one is a pattern, as in redis-cli.
const GLOB = /[*?[]/;

/**
 * Sorts `tail`'s arguments into channels and patterns the way `redis-cli psubscribe` users
 * expect; `--channel` and `--pattern` force either (a channel may legally contain `*`).
 */
export function splitSubscriptions(args: string[], channels: string[] = [], patterns: string[] = []): { channels: string[]; patterns: string[] } {
  const out = { channels: [...channels], patterns: [...patterns] };
  for (const a of args) (GLOB.test(a) ? out.patterns : out.channels).push(a);
  if (out.channels.length + out.patterns.length === 0) throw new UsageError("expected at least one <channel|pattern>");
  return out;
}
