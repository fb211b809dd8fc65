import { checkShardLayout, ConfigError, envBool, envInt, envString, loadSharedSettings, type Env, type SharedSettings } from "../routes/shared-settings.js";

export { ConfigError };

/** Worker vars and secrets (`wrangler.toml [vars]`, `wrangler secret put`, `.dev.vars`). */
export type FunctionsEnv = Env;

/**
 * The functions' settings. Names and defaults of the shared knobs match the relay's
 * (relay/config.ts), so a message published at the edge lands in the same log partition
 * the relay reads.
 */
/** One Upstash database (REST endpoint and token). */
export interface UpstashEndpoint {
  url: string;
  token: string;
}

export interface FunctionsConfig extends SharedSettings {
  /**
   * The log's Redis shards, shard 0 first: one Upstash database each, from the
   * whitespace-separated entries of UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN
   * (the same shards, in the same order, as the relays' REDIS_URL). One entry: no sharding.
   */
  shards: UpstashEndpoint[];
  allowAnonymousPublish: boolean;
  redisTimeoutMs: number;
  breakerThreshold: number;
  breakerCooldownMs: number;
}

export function loadConfig(env: FunctionsEnv): FunctionsConfig {
  const urls = (envString(env, "UPSTASH_REDIS_REST_URL") ?? "").trim().split(/\s+/).filter(Boolean);
  const tokens = (envString(env, "UPSTASH_REDIS_REST_TOKEN") ?? "").trim().split(/\s+/).filter(Boolean);
  if (urls.length === 0 || !urls.every((u) => /^https?:\/\//.test(u))) {
    throw new ConfigError("UPSTASH_REDIS_REST_URL must be set to the http(s) URL of an Upstash REST endpoint (several, whitespace-separated, for a sharded log)");
  }
  if (tokens.length === 0) throw new ConfigError("UPSTASH_REDIS_REST_TOKEN must be set");
  if (tokens.length !== urls.length) {
    throw new ConfigError(`UPSTASH_REDIS_REST_TOKEN must list one token per UPSTASH_REDIS_REST_URL entry, in the same order: got ${tokens.length} tokens for ${urls.length} URLs`);
  }
  const shared = loadSharedSettings(env);
  if (urls.length > 1) checkShardLayout(shared.log.partitions, urls.length, "UPSTASH_REDIS_REST_URL");
  return {
    ...shared,
    shards: urls.map((url, i) => ({ url, token: tokens[i] })),
    allowAnonymousPublish: envBool(env, "FANOUT_ALLOW_ANONYMOUS_PUBLISH"),
    redisTimeoutMs: envInt(env, "FANOUT_REDIS_TIMEOUT_MS", 5000, 100),
    breakerThreshold: envInt(env, "FANOUT_BREAKER_THRESHOLD", 3, 1),
    breakerCooldownMs: envInt(env, "FANOUT_BREAKER_COOLDOWN_MS", 5000, 100),
  };
}
