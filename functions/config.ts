import { ConfigError, envBool, envInt, envString, loadSharedSettings, type Env, type SharedSettings } from "../routes/shared-settings.js";

export { ConfigError };

/** Worker vars and secrets (`wrangler.toml [vars]`, `wrangler secret put`, `.dev.vars`). */
export type FunctionsEnv = Env;

/**
 * The functions' settings. Names and defaults of the shared knobs match the relay's
 * (relay/config.ts), so a message published at the edge lands in the same log partition
 * the relay reads.
 */
export interface FunctionsConfig extends SharedSettings {
  redisUrl: string;
  redisToken: string;
  allowAnonymousPublish: boolean;
  redisTimeoutMs: number;
  breakerThreshold: number;
  breakerCooldownMs: number;
}

export function loadConfig(env: FunctionsEnv): FunctionsConfig {
  const redisUrl = envString(env, "UPSTASH_REDIS_REST_URL");
  const redisToken = envString(env, "UPSTASH_REDIS_REST_TOKEN");
  if (!redisUrl || !/^https?:\/\//.test(redisUrl)) {
    throw new ConfigError("UPSTASH_REDIS_REST_URL must be set to the http(s) URL of an Upstash REST endpoint");
  }
  if (!redisToken) throw new ConfigError("UPSTASH_REDIS_REST_TOKEN must be set");
  return {
    ...loadSharedSettings(env),
    redisUrl,
    redisToken,
    allowAnonymousPublish: envBool(env, "FANOUT_ALLOW_ANONYMOUS_PUBLISH"),
    redisTimeoutMs: envInt(env, "FANOUT_REDIS_TIMEOUT_MS", 5000, 100),
    breakerThreshold: envInt(env, "FANOUT_BREAKER_THRESHOLD", 3, 1),
    breakerCooldownMs: envInt(env, "FANOUT_BREAKER_COOLDOWN_MS", 5000, 100),
  };
}
