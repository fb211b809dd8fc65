import { FanoutError } from "../errors.js";
import { ScopeBudget, channelAllowed, patternWithin } from "../pattern-scope.js";

/**
 * What a JWT may do: Redis globs of the channels it may subscribe to and publish on, and
 * whether it may read the operations endpoints that name channels, patterns and clients.
 */
export interface Grants {
  readonly subscribe: readonly string[];
  readonly publish: readonly string[];
  /** `fanout.admin: true`: may read `/v1/stats` with names (never implied by any glob). */
  readonly admin: boolean;
}

/** Globs per claim list and bytes per glob: bounds the cost of checking one request. */
export const MAX_GRANT_GLOBS = 64;

function globList(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.length > MAX_GRANT_GLOBS || !value.every((g) => typeof g === "string" && g.length > 0 && g.length <= 1024)) {
    throw new FanoutError(401, "invalid_token", `the token's fanout.${field} claim must be a list of at most ${MAX_GRANT_GLOBS} non-empty glob strings`);
  }
  return value as string[];
}

/**
 * Reads the `fanout` claim, `{ "subscribe": [globs], "publish": [globs], "admin": true? }`.
 * A missing claim grants nothing; a malformed one makes the token invalid (401), not
 * silently empty.
 */
export function parseGrants(claim: unknown): Grants {
  if (claim === undefined || claim === null) return { subscribe: [], publish: [], admin: false };
  if (typeof claim !== "object" || Array.isArray(claim)) {
    throw new FanoutError(401, "invalid_token", "the token's fanout claim must be an object { subscribe, publish, admin }");
  }
  const c = claim as Record<string, unknown>;
  // Only the literal `true` grants it: a string "false" must not read as yes.
  if (c.admin !== undefined && c.admin !== null && typeof c.admin !== "boolean") {
    throw new FanoutError(401, "invalid_token", "the token's fanout.admin claim must be true or false");
  }
  return { subscribe: globList(c.subscribe, "subscribe"), publish: globList(c.publish, "publish"), admin: c.admin === true };
}

/** Every channel must match one of the globs; 403 naming the first that does not. */
export function checkChannels(channels: Iterable<string>, allowed: readonly string[], action: "publish to" | "subscribe to"): void {
  const budget = new ScopeBudget();
  for (const ch of channels) {
    if (!channelAllowed(ch, allowed, budget)) {
      throw new FanoutError(403, "forbidden_channel", `this credential may not ${action} channel ${JSON.stringify(ch.slice(0, 200))}`);
    }
  }
}

/**
 * A pattern is allowed only when every channel it can match is allowed (sound inclusion:
 * when the check cannot prove it, the answer is no).
 */
export function checkPatterns(patterns: Iterable<string>, allowed: readonly string[]): void {
  const budget = new ScopeBudget();
  for (const p of patterns) {
    if (!patternWithin(p, allowed, budget)) {
      throw new FanoutError(403, "forbidden_pattern", `this credential may not subscribe to pattern ${JSON.stringify(p.slice(0, 200))}: it can match channels outside the grant`);
    }
  }
}
