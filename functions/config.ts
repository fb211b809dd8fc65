import type { LogSettings } from "../protocol/publish-script.js";
import type { HookMapping } from "../routes/hooks/hook-mapping.js";
import { DEFAULT_HOOK_MAPPING } from "../routes/hooks/hook-mapping.js";

/** Worker vars and secrets (`wrangler.toml [vars]`, `wrangler secret put`, `.dev.vars`). */
export type FunctionsEnv = Record<string, unknown>;

/**
 * The functions' settings. Names and defaults of the shared knobs match the relay's
 * (relay/config.ts), so a message published at the edge lands in the same log partition
 * the relay reads.
 */
export interface FunctionsConfig {
  redisUrl: string;
  redisToken: string;
  publishKeys: string[];
  jwtSecret?: string;
  allowAnonymousPublish: boolean;
  log: LogSettings;
  maxBodyBytes: number;
  maxBatch: number;
  redisTimeoutMs: number;
  breakerThreshold: number;
  breakerCooldownMs: number;
  hookSecrets: { github?: string; vercel?: string; netlify?: string; generic?: string };
  hookMapping: HookMapping;
  hookDedupeSeconds: number;
}

export class ConfigError extends Error {}

function str(env: FunctionsEnv, name: string): string | undefined {
  const v = env[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new ConfigError(`${name} must be a string`);
  const t = v.trim();
  return t ? t : undefined;
}

function int(env: FunctionsEnv, name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = str(env, name);
  if (raw === undefined) return def;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got ${JSON.stringify(raw)}`);
  const v = Number(raw);
  if (v < min || v > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${v}`);
  return v;
}

function list(env: FunctionsEnv, name: string, def: string[] = []): string[] {
  const raw = str(env, name);
  if (raw === undefined) return def;
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function bool(env: FunctionsEnv, name: string): boolean {
  const raw = str(env, name)?.toLowerCase();
  if (raw === undefined || raw === "false" || raw === "0") return false;
  if (raw === "true" || raw === "1") return true;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

export function loadConfig(env: FunctionsEnv): FunctionsConfig {
  const redisUrl = str(env, "UPSTASH_REDIS_REST_URL");
  const redisToken = str(env, "UPSTASH_REDIS_REST_TOKEN");
  if (!redisUrl || !/^https?:\/\//.test(redisUrl)) {
    throw new ConfigError("UPSTASH_REDIS_REST_URL must be set to the http(s) URL of an Upstash REST endpoint");
  }
  if (!redisToken) throw new ConfigError("UPSTASH_REDIS_REST_TOKEN must be set");
  return {
    redisUrl,
    redisToken,
    publishKeys: list(env, "FANOUT_PUBLISH_KEYS"),
    jwtSecret: str(env, "FANOUT_JWT_SECRET"),
    allowAnonymousPublish: bool(env, "FANOUT_ALLOW_ANONYMOUS_PUBLISH"),
    log: {
      prefix: str(env, "FANOUT_LOG_PREFIX") ?? "fanout",
      partitions: int(env, "FANOUT_LOG_PARTITIONS", 4, 1, 64),
      maxLen: int(env, "FANOUT_HISTORY_SIZE", 1000, 1),
      ttlMs: int(env, "FANOUT_HISTORY_TTL", 3600, 0) * 1000,
      dedupeSeconds: int(env, "FANOUT_DEDUPE_TTL", 300, 1),
    },
    maxBodyBytes: int(env, "FANOUT_MAX_BODY_BYTES", 1024 * 1024, 64),
    maxBatch: int(env, "FANOUT_MAX_BATCH", 100, 1, 10_000),
    redisTimeoutMs: int(env, "FANOUT_REDIS_TIMEOUT_MS", 5000, 100),
    breakerThreshold: int(env, "FANOUT_BREAKER_THRESHOLD", 3, 1),
    breakerCooldownMs: int(env, "FANOUT_BREAKER_COOLDOWN_MS", 5000, 100),
    hookSecrets: {
      github: str(env, "FANOUT_GITHUB_SECRET"),
      vercel: str(env, "FANOUT_VERCEL_SECRET"),
      netlify: str(env, "FANOUT_NETLIFY_SECRET"),
      generic: str(env, "FANOUT_HOOK_SECRET"),
    },
    hookMapping: {
      scope: str(env, "FANOUT_HOOK_SCOPE") ?? DEFAULT_HOOK_MAPPING.scope,
      keys: list(env, "FANOUT_HOOK_KEYS"),
      tags: list(env, "FANOUT_HOOK_TAGS"),
      paths: list(env, "FANOUT_HOOK_PATHS"),
      githubEvents: list(env, "FANOUT_GITHUB_EVENTS", DEFAULT_HOOK_MAPPING.githubEvents),
      vercelEvents: list(env, "FANOUT_VERCEL_EVENTS", DEFAULT_HOOK_MAPPING.vercelEvents),
      netlifyStates: list(env, "FANOUT_NETLIFY_STATES", DEFAULT_HOOK_MAPPING.netlifyStates),
    },
    hookDedupeSeconds: int(env, "FANOUT_HOOK_DEDUPE_TTL", 86_400, 1),
  };
}
