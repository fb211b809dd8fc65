import type { PatternCostLimits } from "../protocol/pattern-cost.js";
import type { LogSettings } from "../protocol/publish-script.js";
import { DEFAULT_HOOK_MAPPING, type HookMapping } from "./hooks/hook-mapping.js";
import { DEFAULT_HOOK_POLICY, type HookPolicy } from "./hooks/hook-provider.js";
import { ShardMap } from "../protocol/shard-map.js";

/**
 * Settings both runtimes read with the same names and defaults (relay: process.env; edge:
 * Worker vars and secrets). Sharing the definition is what keeps a message published at the
 * edge in the log partition the relay reads.
 */
export class ConfigError extends Error {}

export type Env = Record<string, unknown>;

export function envString(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new ConfigError(`${name} must be a string`);
  const t = v.trim();
  return t ? t : undefined;
}

export function envInt(env: Env, name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = envString(env, name);
  if (raw === undefined) return def;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got ${JSON.stringify(raw)}`);
  const v = Number(raw);
  if (v < min || v > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${v}`);
  return v;
}

export function envList(env: Env, name: string, def: string[] = []): string[] {
  const raw = envString(env, name);
  if (raw === undefined) return def;
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function envBool(env: Env, name: string, def = false): boolean {
  const raw = envString(env, name)?.toLowerCase();
  if (raw === undefined) return def;
  if (raw === "false" || raw === "0") return false;
  if (raw === "true" || raw === "1") return true;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

export interface SharedSettings {
  publishKeys: string[];
  jwtSecret?: string;
  jwksUrl?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  jwtClockSkewSeconds: number;
  /** Subscriber tokens (and tokens that mint tickets) without `exp` are refused. */
  jwtRequireExp: boolean;
  log: LogSettings;
  maxBodyBytes: number;
  maxBatch: number;
  hookSecrets: { github?: string; vercel?: string; netlify?: string; generic?: string };
  hookMapping: HookMapping;
  hookDedupeSeconds: number;
  /** Generic hook: how far `X-Fanout-Timestamp` may be from this clock; whether it is required. */
  hookPolicy: HookPolicy;
  publicChannels: string[];
  maxSubscriptionsPerConnection: number;
  /**
   * What one connection's patterns may cost to match (protocol/pattern-cost.ts), applied when
   * a stream opens and when a ticket is issued, so the edge never issues a ticket the relay
   * would refuse.
   */
  patternLimits: PatternCostLimits;
  ticketTtlSeconds: number;
  ticketMaxTtlSeconds: number;
}

export function loadSharedSettings(env: Env): SharedSettings {
  const jwksUrl = envString(env, "FANOUT_JWKS_URL");
  const ticketMaxTtlSeconds = envInt(env, "FANOUT_TICKET_MAX_TTL", 300, 1, 86_400);
  if (jwksUrl && !/^https?:\/\//.test(jwksUrl)) throw new ConfigError(`FANOUT_JWKS_URL must be an http(s) URL, got ${JSON.stringify(jwksUrl)}`);
  const patternLimits: PatternCostLimits = {
    maxStars: envInt(env, "FANOUT_MAX_PATTERN_STARS", 8, 0, 100),
    maxBytes: envInt(env, "FANOUT_MAX_PATTERN_BYTES", 256, 1, 1024),
    // ≈ 1024 × the longest text after a `*` (about 96 bytes); see patternCost.
    maxCost: envInt(env, "FANOUT_MAX_PATTERN_COST", 100_000, 1_000),
    maxConnectionCost: envInt(env, "FANOUT_MAX_CONNECTION_PATTERN_COST", 1_000_000, 1_000),
  };
  if (patternLimits.maxConnectionCost < patternLimits.maxCost) {
    throw new ConfigError("FANOUT_MAX_CONNECTION_PATTERN_COST must be at least FANOUT_MAX_PATTERN_COST (one pattern must fit a connection)");
  }
  return {
    publishKeys: envList(env, "FANOUT_PUBLISH_KEYS"),
    jwtSecret: envString(env, "FANOUT_JWT_SECRET"),
    jwksUrl,
    jwtIssuer: envString(env, "FANOUT_JWT_ISSUER"),
    jwtAudience: envString(env, "FANOUT_JWT_AUDIENCE"),
    jwtClockSkewSeconds: envInt(env, "FANOUT_JWT_CLOCK_SKEW", 5, 0, 300),
    jwtRequireExp: envBool(env, "FANOUT_JWT_REQUIRE_EXP", true),
    log: {
      prefix: logPrefix(env),
      partitions: envInt(env, "FANOUT_LOG_PARTITIONS", 4, 1, 64),
      maxLen: envInt(env, "FANOUT_HISTORY_SIZE", 1000, 1),
      ttlMs: envInt(env, "FANOUT_HISTORY_TTL", 3600, 0) * 1000,
      dedupeSeconds: envInt(env, "FANOUT_DEDUPE_TTL", 300, 1),
    },
    maxBodyBytes: envInt(env, "FANOUT_MAX_BODY_BYTES", 1024 * 1024, 64),
    maxBatch: envInt(env, "FANOUT_MAX_BATCH", 100, 1, 10_000),
    hookSecrets: {
      github: envString(env, "FANOUT_GITHUB_SECRET"),
      vercel: envString(env, "FANOUT_VERCEL_SECRET"),
      netlify: envString(env, "FANOUT_NETLIFY_SECRET"),
      generic: envString(env, "FANOUT_HOOK_SECRET"),
    },
    hookMapping: {
      scope: envString(env, "FANOUT_HOOK_SCOPE") ?? DEFAULT_HOOK_MAPPING.scope,
      keys: envList(env, "FANOUT_HOOK_KEYS"),
      tags: envList(env, "FANOUT_HOOK_TAGS"),
      paths: envList(env, "FANOUT_HOOK_PATHS"),
      githubEvents: envList(env, "FANOUT_GITHUB_EVENTS", DEFAULT_HOOK_MAPPING.githubEvents),
      vercelEvents: envList(env, "FANOUT_VERCEL_EVENTS", DEFAULT_HOOK_MAPPING.vercelEvents),
      netlifyStates: envList(env, "FANOUT_NETLIFY_STATES", DEFAULT_HOOK_MAPPING.netlifyStates),
    },
    hookDedupeSeconds: envInt(env, "FANOUT_HOOK_DEDUPE_TTL", 86_400, 1),
    hookPolicy: {
      toleranceSeconds: envInt(env, "FANOUT_HOOK_TOLERANCE", DEFAULT_HOOK_POLICY.toleranceSeconds, 1, 3600),
      requireTimestamp: envBool(env, "FANOUT_HOOK_REQUIRE_TIMESTAMP", DEFAULT_HOOK_POLICY.requireTimestamp),
    },
    publicChannels: envList(env, "FANOUT_PUBLIC_CHANNELS"),
    maxSubscriptionsPerConnection: envInt(env, "FANOUT_MAX_SUBSCRIPTIONS", 100, 1),
    patternLimits,
    ticketTtlSeconds: envInt(env, "FANOUT_TICKET_TTL", 30, 1, ticketMaxTtlSeconds),
    ticketMaxTtlSeconds,
  };
}

/**
 * Every shard must hold at least one log partition: Jump hashing spreads few partitions
 * unevenly, and a shard without any would carry subscriptions and nothing else.
 */
export function checkShardLayout(partitions: number, shards: number, variable: string): void {
  const empty = new ShardMap(partitions, shards).emptyShards();
  if (empty.length === 0) return;
  let hint = Math.min(64, 4 * shards);
  while (hint < 64 && new ShardMap(hint, shards).emptyShards().length > 0) hint++;
  throw new ConfigError(
    `${variable} lists ${shards} shards but FANOUT_LOG_PARTITIONS=${partitions} leaves shard ${empty.join(", ")} without a partition; use more partitions (e.g. ${hint})`,
  );
}

/**
 * `FANOUT_LOG_PREFIX`: it sits inside Redis hash tags (`{fanout:3}:log`, where a brace would
 * move keys to another slot) and in front of the relays' reserved channels and the patterns
 * that guard them (where a glob metacharacter would change what they match).
 */
function logPrefix(env: Env): string {
  const prefix = envString(env, "FANOUT_LOG_PREFIX") ?? "fanout";
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(prefix)) {
    throw new ConfigError(`FANOUT_LOG_PREFIX must be 1 to 64 of A-Z a-z 0-9 _ . : - (no braces or glob characters), got ${JSON.stringify(prefix)}`);
  }
  return prefix;
}
