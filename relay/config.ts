/**
 * All relay settings, read once from the environment with defaults and validated at
 * start-up: a bad value stops the process with a message naming the variable.
 */
export interface RelayConfig {
  port: number;
  host: string;
  /** Unset: embedded in-memory broker. */
  redisUrl?: string;
  publishKeys: string[];
  jwtSecret?: string;
  jwksUrl?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  jwtClockSkewSeconds: number;
  ticketTtlSeconds: number;
  ticketMaxTtlSeconds: number;
  publicChannels: string[];
  corsOrigins: string[];
  log: { prefix: string; partitions: number; maxLen: number; ttlMs: number; dedupeSeconds: number };
  maxBodyBytes: number;
  maxBatch: number;
  heartbeatMs: number;
  retryMs: number;
  maxSubscriptionsPerConnection: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxPatternStars: number;
  maxPatternBytes: number;
  queueMaxBytes: number;
  queueMaxMessages: number;
  unsubscribeDelayMs: number;
  replayLimit: number;
  drainGraceMs: number;
  publishRatePerSecond: number;
  publishBurst: number;
  hookSecret?: string;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be a whole number, got ${JSON.stringify(raw)}`);
  const v = Number(raw.trim());
  if (v < min || v > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${v}`);
  return v;
}

function list(env: Env, name: string): string[] {
  return (env[name] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function str(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

export function loadConfig(env: Env = process.env): RelayConfig {
  const redisUrl = str(env, "REDIS_URL");
  if (redisUrl && !/^(rediss?:\/\/|redis\+sentinel:\/\/)/.test(redisUrl) && !/^[^,\s]+:\d+(,[^,\s]+:\d+)+$/.test(redisUrl)) {
    throw new ConfigError(
      `REDIS_URL must be redis://, rediss://, redis+sentinel://host:port[,host:port]/master or a comma list of cluster nodes host:port,host:port; got ${JSON.stringify(redisUrl)}`,
    );
  }
  const corsOrigins = list(env, "FANOUT_CORS_ORIGINS");
  if (corsOrigins.includes("*") && corsOrigins.length > 1) {
    throw new ConfigError("FANOUT_CORS_ORIGINS is either * alone (any origin, no credentials) or a list of origins (with credentials), not both");
  }
  for (const o of corsOrigins) {
    if (o !== "*" && !/^https?:\/\/[^/\s]+$/.test(o)) throw new ConfigError(`FANOUT_CORS_ORIGINS entries must be origins like https://app.example.com (no path), got ${JSON.stringify(o)}`);
  }
  const jwksUrl = str(env, "FANOUT_JWKS_URL");
  if (jwksUrl && !/^https?:\/\//.test(jwksUrl)) throw new ConfigError(`FANOUT_JWKS_URL must be an http(s) URL, got ${JSON.stringify(jwksUrl)}`);
  const publishRatePerSecond = int(env, "FANOUT_PUBLISH_RATE", 0, 0);
  const ticketMaxTtlSeconds = int(env, "FANOUT_TICKET_MAX_TTL", 300, 1, 86_400);
  return {
    port: int(env, "PORT", 8080, 0, 65535),
    host: str(env, "HOST") ?? "0.0.0.0",
    redisUrl,
    publishKeys: list(env, "FANOUT_PUBLISH_KEYS"),
    jwtSecret: str(env, "FANOUT_JWT_SECRET"),
    jwksUrl,
    jwtIssuer: str(env, "FANOUT_JWT_ISSUER"),
    jwtAudience: str(env, "FANOUT_JWT_AUDIENCE"),
    jwtClockSkewSeconds: int(env, "FANOUT_JWT_CLOCK_SKEW", 5, 0, 300),
    ticketTtlSeconds: int(env, "FANOUT_TICKET_TTL", 30, 1, ticketMaxTtlSeconds),
    ticketMaxTtlSeconds,
    publicChannels: list(env, "FANOUT_PUBLIC_CHANNELS"),
    corsOrigins,
    log: {
      prefix: str(env, "FANOUT_LOG_PREFIX") ?? "fanout",
      partitions: int(env, "FANOUT_LOG_PARTITIONS", 4, 1, 64),
      maxLen: int(env, "FANOUT_HISTORY_SIZE", 1000, 1),
      ttlMs: int(env, "FANOUT_HISTORY_TTL", 3600, 0) * 1000,
      dedupeSeconds: int(env, "FANOUT_DEDUPE_TTL", 300, 1),
    },
    maxBodyBytes: int(env, "FANOUT_MAX_BODY_BYTES", 1024 * 1024, 64),
    maxBatch: int(env, "FANOUT_MAX_BATCH", 100, 1, 10_000),
    heartbeatMs: int(env, "FANOUT_HEARTBEAT_MS", 15_000, 100),
    retryMs: int(env, "FANOUT_RETRY_MS", 2000, 0),
    maxSubscriptionsPerConnection: int(env, "FANOUT_MAX_SUBSCRIPTIONS", 100, 1),
    maxConnections: int(env, "FANOUT_MAX_CONNECTIONS", 20_000, 1),
    maxConnectionsPerIp: int(env, "FANOUT_MAX_CONNECTIONS_PER_IP", 20_000, 1),
    maxPatternStars: int(env, "FANOUT_MAX_PATTERN_STARS", 8, 0, 100),
    maxPatternBytes: int(env, "FANOUT_MAX_PATTERN_BYTES", 256, 1, 1024),
    queueMaxBytes: int(env, "FANOUT_QUEUE_MAX_BYTES", 1024 * 1024, 1024),
    queueMaxMessages: int(env, "FANOUT_QUEUE_MAX_MESSAGES", 1000, 1),
    unsubscribeDelayMs: int(env, "FANOUT_UNSUBSCRIBE_DELAY_MS", 1000, 0),
    replayLimit: int(env, "FANOUT_REPLAY_LIMIT", 10_000, 1),
    drainGraceMs: int(env, "FANOUT_DRAIN_GRACE_MS", 10_000, 0),
    publishRatePerSecond,
    publishBurst: int(env, "FANOUT_PUBLISH_BURST", Math.max(publishRatePerSecond, 1), 1),
    hookSecret: str(env, "FANOUT_HOOK_SECRET"),
  };
}
