import { TrustedProxies } from "./auth/trusted-proxies.js";
import type { AlertSettings } from "./ops/alerts.js";
import { redisShardUrls, shardUrlProblem } from "./redis/redis-shards.js";
import type { PublishReplicas } from "./redis/replicated-publish.js";
import { checkShardLayout, ConfigError, envInt, envList, envString, loadSharedSettings, type Env, type SharedSettings } from "../routes/shared-settings.js";

export { ConfigError };

const MiB = 1024 * 1024;

/**
 * All relay settings, read once from the environment with defaults and validated at
 * start-up: a bad value stops the process with a message naming the variable. The knobs
 * shared with the edge functions (keys, JWT, log, limits, hooks) come from one definition.
 */
export interface RelayConfig extends SharedSettings {
  port: number;
  host: string;
  /** Unset: embedded in-memory broker. */
  redisUrl?: string;
  /** `REDIS_URL` with several whitespace-separated entries: the log's independent shards, shard 0 first. */
  redisShards?: string[];
  /**
   * `FANOUT_CLUSTER_PUBSUB` (Redis Cluster only): `sharded` publishes log messages with
   * SPUBLISH on per-partition shard channels; `classic` (default) with PUBLISH.
   */
  clusterPubsub: "classic" | "sharded";
  /** `FANOUT_CLUSTER_CLASSIC_COPY` (sharded only): also PUBLISH each envelope for plain Redis subscribers. */
  clusterClassicCopy: boolean;
  /**
   * `FANOUT_PUBLISH_REPLICAS` / `_TIMEOUT_MS`: after each publish script, `WAIT <replicas>
   * <timeoutMs>` on the connection (node) that ran it; fewer acknowledgements answer 503
   * `not_replicated`. 0 (the default): no WAIT, Redis's asynchronous replication as is.
   */
  publishReplicas: PublishReplicas;
  /**
   * `FANOUT_REDIS_COMMAND_TIMEOUT_MS`: a command (a publish) unanswered this long fails, so a
   * server that holds its connections but has stopped answering costs a 503, not a hang.
   */
  redisCommandTimeoutMs: number;
  corsOrigins: string[];
  heartbeatMs: number;
  retryMs: number;
  maxConnections: number;
  /** Streams one client address may hold (IPv6: one /64); see `remoteAddress` for what the address is. */
  maxConnectionsPerIp: number;
  /**
   * Worst-case matching steps of all distinct patterns open on this relay together: what one
   * message can cost the relay to route (it matches clients' globs itself on both brokers).
   */
  maxRelayPatternCost: number;
  /** Peers whose `X-Forwarded-For` is believed (`FANOUT_TRUSTED_PROXIES`); empty: the header is ignored. */
  trustedProxies: TrustedProxies;
  /**
   * `FANOUT_STREAM_EXPIRY` (`on`/`off`, default on): a stream opened with a JWT (or a ticket a
   * JWT minted) ends with `event: expired` when the token's `exp` passes.
   */
  streamExpiry: boolean;
  /**
   * `FANOUT_COMPRESSION` (`off`/`gzip`, default off): with `gzip`, a stream whose client
   * accepts it is sent `Content-Encoding: gzip`, each frame compressed once for all.
   */
  compression: "off" | "gzip";
  /** Longest time to receive one request's headers and body; streams (responses) are not bounded by it. */
  requestTimeoutMs: number;
  /** Hard limit of bytes held for one client: past it, cut at once. */
  queueMaxBytes: number;
  /** Soft limit: a client holding more than this for `queueSoftSeconds` is cut. */
  queueSoftBytes: number;
  queueSoftSeconds: number;
  /** Frames queued for one client beyond which it counts as over the soft limit. */
  queueMaxMessages: number;
  /** Relay-wide budget of bytes held for all clients; past it the largest holders are cut. */
  queueBudgetBytes: number;
  unsubscribeDelayMs: number;
  /** Live messages held while the relay catches up from the log after a broker drop. */
  catchUpBacklog: number;
  replayLimit: number;
  drainGraceMs: number;
  publishRatePerSecond: number;
  publishBurst: number;
  /** Longest pause between write passes under load (0: write every event-loop turn). */
  writeLingerMaxMs: number;
  /** The fleet view's id for this relay and the `relay` label on /metrics (open to all); unset: random per process. */
  relayId?: string;
  /** Fleet heartbeat: how often each relay reports, how long a report outlives a silent relay, top subscriptions reported. */
  fleet: { heartbeatMs: number; ttlMs: number; topChannels: number };
  alerts: AlertSettings;
  /**
   * Presence (`FANOUT_PRESENCE_*`): channels matching one of `channels` (Redis globs; empty:
   * presence off) track their subscribers. Each relay refreshes its members every
   * `heartbeatMs`; an entry not refreshed for `ttlMs` (its relay died) is swept.
   */
  presence: { channels: string[]; ttlMs: number; heartbeatMs: number };
  /**
   * `FANOUT_EXAMPLES_LOGIN`: `POST /examples/login` mints a JWT for any user name (loopback
   * callers only), for the example pages. A development convenience: a real deployment's
   * own backend signs in its users and mints their tokens.
   */
  examplesLogin: boolean;
}

/** Presence settings (FANOUT_PRESENCE_*). */
function loadPresenceSettings(env: Env): RelayConfig["presence"] {
  const channels = envList(env, "FANOUT_PRESENCE_CHANNELS");
  for (const g of channels) {
    if (g.length > 1024 || /[\u0000-\u001f\u007f]/.test(g)) throw new ConfigError(`FANOUT_PRESENCE_CHANNELS entries must be globs of at most 1024 characters without control characters, got ${JSON.stringify(g.slice(0, 80))}`);
  }
  const heartbeatMs = envInt(env, "FANOUT_PRESENCE_HEARTBEAT_MS", 5000, 50, 600_000);
  const ttlMs = envInt(env, "FANOUT_PRESENCE_TTL_MS", 3 * heartbeatMs, 100, 3_600_000);
  // One late refresh must not make a live member leave.
  if (ttlMs < 2 * heartbeatMs) throw new ConfigError(`FANOUT_PRESENCE_TTL_MS (${ttlMs}) must be at least twice FANOUT_PRESENCE_HEARTBEAT_MS (${heartbeatMs})`);
  return { channels, ttlMs, heartbeatMs };
}

/** Fleet heartbeat and health-alert settings (FANOUT_FLEET_*, FANOUT_ALERT_*). */
function loadOpsSettings(env: Env): Pick<RelayConfig, "relayId" | "fleet" | "alerts"> {
  const relayId = envString(env, "FANOUT_RELAY_ID");
  if (relayId !== undefined && !/^[A-Za-z0-9._:-]{1,64}$/.test(relayId)) {
    throw new ConfigError(`FANOUT_RELAY_ID must be 1 to 64 characters of A-Z a-z 0-9 . _ : -, got ${JSON.stringify(relayId)}`);
  }
  const heartbeatMs = envInt(env, "FANOUT_FLEET_HEARTBEAT_MS", 5000, 100, 600_000);
  const ttlMs = envInt(env, "FANOUT_FLEET_TTL_MS", 3 * heartbeatMs, 1, 3_600_000);
  // One late beat must not make a live relay vanish from the fleet.
  if (ttlMs < 2 * heartbeatMs) throw new ConfigError(`FANOUT_FLEET_TTL_MS (${ttlMs}) must be at least twice FANOUT_FLEET_HEARTBEAT_MS (${heartbeatMs})`);
  return {
    relayId,
    fleet: { heartbeatMs, ttlMs, topChannels: envInt(env, "FANOUT_FLEET_TOP_CHANNELS", 20, 0, 1000) },
    alerts: {
      inactiveSeconds: envInt(env, "FANOUT_ALERT_INACTIVE_SECONDS", 300, 0),
      channelSubscribers: envInt(env, "FANOUT_ALERT_CHANNEL_SUBSCRIBERS", 1000, 0),
      memoryBytes: envInt(env, "FANOUT_ALERT_MEMORY_BYTES", 1024 * MiB, 0),
      redisMemoryPercent: envInt(env, "FANOUT_ALERT_REDIS_MEMORY_PERCENT", 80, 0, 100),
      windowSeconds: envInt(env, "FANOUT_ALERT_WINDOW_SECONDS", 300, 1, 86_400),
      catchUps: envInt(env, "FANOUT_ALERT_CATCHUPS", 5, 0),
      resets: envInt(env, "FANOUT_ALERT_RESETS", 100, 0),
      slowDrops: envInt(env, "FANOUT_ALERT_SLOW_DROPS", 50, 0),
    },
  };
}

export function loadConfig(env: Env = process.env): RelayConfig {
  const redisUrl = envString(env, "REDIS_URL")?.trim();
  const shardUrls = redisUrl ? redisShardUrls(redisUrl) : [];
  if (shardUrls.length > 1) {
    for (const u of shardUrls) {
      const problem = shardUrlProblem(u);
      if (problem) throw new ConfigError(`REDIS_URL lists ${shardUrls.length} shards (separated by whitespace): ${problem}`);
    }
  } else if (redisUrl && !/^(rediss?:\/\/|redis\+sentinel:\/\/)/.test(redisUrl) && !/^[^,\s]+:\d+(,[^,\s]+:\d+)+$/.test(redisUrl)) {
    throw new ConfigError(
      `REDIS_URL must be redis://, rediss://, redis+sentinel://host:port[,host:port]/master or a comma list of cluster nodes host:port,host:port; got ${JSON.stringify(redisUrl)}`,
    );
  }
  const publishReplicas: PublishReplicas = {
    count: envInt(env, "FANOUT_PUBLISH_REPLICAS", 0, 0, 100),
    // WAIT 0 would block forever: a timeout is always finite.
    timeoutMs: envInt(env, "FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS", 1000, 1, 60_000),
  };
  const redisCommandTimeoutMs = envInt(env, "FANOUT_REDIS_COMMAND_TIMEOUT_MS", 5000, 100, 600_000);
  if (publishReplicas.count > 0 && !redisUrl) throw new ConfigError("FANOUT_PUBLISH_REPLICAS needs REDIS_URL: the embedded broker has no replicas");
  const corsOrigins = envList(env, "FANOUT_CORS_ORIGINS");
  if (corsOrigins.includes("*") && corsOrigins.length > 1) {
    throw new ConfigError("FANOUT_CORS_ORIGINS is either * alone (any origin, no credentials) or a list of origins (with credentials), not both");
  }
  for (const o of corsOrigins) {
    if (o !== "*" && !/^https?:\/\/[^/\s]+$/.test(o)) throw new ConfigError(`FANOUT_CORS_ORIGINS entries must be origins like https://app.example.com (no path), got ${JSON.stringify(o)}`);
  }
  const publishRatePerSecond = envInt(env, "FANOUT_PUBLISH_RATE", 0, 0);
  const shared = loadSharedSettings(env);
  if (shardUrls.length > 1) checkShardLayout(shared.log.partitions, shardUrls.length, "REDIS_URL");
  const maxRelayPatternCost = envInt(env, "FANOUT_MAX_RELAY_PATTERN_COST", 5_000_000, 1_000);
  if (maxRelayPatternCost < shared.patternLimits.maxConnectionCost) {
    throw new ConfigError("FANOUT_MAX_RELAY_PATTERN_COST must be at least FANOUT_MAX_CONNECTION_PATTERN_COST (one connection's patterns must fit the relay)");
  }
  const isCluster = !!redisUrl && shardUrls.length <= 1 && !/^(rediss?:\/\/|redis\+sentinel:\/\/)/.test(redisUrl);
  const clusterPubsub = (envString(env, "FANOUT_CLUSTER_PUBSUB") ?? "classic").toLowerCase();
  if (clusterPubsub !== "classic" && clusterPubsub !== "sharded") throw new ConfigError(`FANOUT_CLUSTER_PUBSUB must be classic or sharded, got ${JSON.stringify(clusterPubsub)}`);
  if (clusterPubsub === "sharded" && !isCluster) {
    throw new ConfigError("FANOUT_CLUSTER_PUBSUB=sharded needs a Redis Cluster REDIS_URL (host:port,host:port,…): sharded Pub/Sub is a Cluster feature");
  }
  const classicCopy = (envString(env, "FANOUT_CLUSTER_CLASSIC_COPY") ?? "off").toLowerCase();
  if (classicCopy !== "on" && classicCopy !== "off") throw new ConfigError(`FANOUT_CLUSTER_CLASSIC_COPY must be on or off, got ${JSON.stringify(classicCopy)}`);
  if (classicCopy === "on" && clusterPubsub !== "sharded") throw new ConfigError("FANOUT_CLUSTER_CLASSIC_COPY applies only with FANOUT_CLUSTER_PUBSUB=sharded (classic mode always PUBLISHes)");
  const streamExpiry = (envString(env, "FANOUT_STREAM_EXPIRY") ?? "on").toLowerCase();
  if (streamExpiry !== "on" && streamExpiry !== "off") throw new ConfigError(`FANOUT_STREAM_EXPIRY must be on or off, got ${JSON.stringify(streamExpiry)}`);
  const compression = (envString(env, "FANOUT_COMPRESSION") ?? "off").toLowerCase();
  if (compression !== "off" && compression !== "gzip") throw new ConfigError(`FANOUT_COMPRESSION must be off or gzip, got ${JSON.stringify(compression)}`);
  let trustedProxies: TrustedProxies;
  try {
    trustedProxies = TrustedProxies.parse(envList(env, "FANOUT_TRUSTED_PROXIES"));
  } catch (err) {
    throw new ConfigError(`FANOUT_TRUSTED_PROXIES: ${(err as Error).message}`);
  }
  // Redis's `client-output-buffer-limit pubsub 32mb 8mb 60`, per client, plus a budget for all.
  const queueMaxBytes = envInt(env, "FANOUT_QUEUE_MAX_BYTES", 32 * MiB, 1024);
  const queueSoftBytes = envInt(env, "FANOUT_QUEUE_SOFT_BYTES", Math.min(8 * MiB, queueMaxBytes), 1024);
  if (queueSoftBytes > queueMaxBytes) {
    throw new ConfigError(`FANOUT_QUEUE_SOFT_BYTES (${queueSoftBytes}) must not exceed FANOUT_QUEUE_MAX_BYTES (${queueMaxBytes}), the hard limit`);
  }
  const examplesLogin = (envString(env, "FANOUT_EXAMPLES_LOGIN") ?? "off").toLowerCase();
  if (examplesLogin !== "on" && examplesLogin !== "off") throw new ConfigError(`FANOUT_EXAMPLES_LOGIN must be on or off, got ${JSON.stringify(examplesLogin)}`);
  if (examplesLogin === "on" && !shared.jwtSecret) throw new ConfigError("FANOUT_EXAMPLES_LOGIN=on signs tokens with FANOUT_JWT_SECRET: set it too");
  return {
    ...shared,
    presence: loadPresenceSettings(env),
    examplesLogin: examplesLogin === "on",
    port: envInt(env, "PORT", 8080, 0, 65535),
    host: envString(env, "HOST") ?? "0.0.0.0",
    redisUrl,
    redisShards: shardUrls.length > 1 ? shardUrls : undefined,
    clusterPubsub,
    clusterClassicCopy: classicCopy === "on",
    publishReplicas,
    redisCommandTimeoutMs,
    corsOrigins,
    heartbeatMs: envInt(env, "FANOUT_HEARTBEAT_MS", 15_000, 100),
    retryMs: envInt(env, "FANOUT_RETRY_MS", 2000, 0),
    maxConnections: envInt(env, "FANOUT_MAX_CONNECTIONS", 20_000, 1),
    // Many people share one address (offices, campuses, carrier NAT), each with a tab or two
    // open: a few hundred streams per address, never the whole relay.
    maxConnectionsPerIp: envInt(env, "FANOUT_MAX_CONNECTIONS_PER_IP", 256, 1),
    trustedProxies,
    streamExpiry: streamExpiry === "on",
    compression,
    requestTimeoutMs: envInt(env, "FANOUT_REQUEST_TIMEOUT_MS", 10_000, 1000, 600_000),
    maxRelayPatternCost,
    queueMaxBytes,
    queueSoftBytes,
    queueSoftSeconds: envInt(env, "FANOUT_QUEUE_SOFT_SECONDS", 60, 0, 3600),
    queueMaxMessages: envInt(env, "FANOUT_QUEUE_MAX_MESSAGES", 10_000, 1),
    queueBudgetBytes: envInt(env, "FANOUT_QUEUE_BUDGET_BYTES", 256 * MiB, MiB),
    unsubscribeDelayMs: envInt(env, "FANOUT_UNSUBSCRIBE_DELAY_MS", 1000, 0),
    catchUpBacklog: envInt(env, "FANOUT_CATCHUP_BACKLOG", 100_000, 1),
    replayLimit: envInt(env, "FANOUT_REPLAY_LIMIT", 10_000, 1),
    drainGraceMs: envInt(env, "FANOUT_DRAIN_GRACE_MS", 10_000, 0),
    publishRatePerSecond,
    publishBurst: envInt(env, "FANOUT_PUBLISH_BURST", Math.max(publishRatePerSecond, 1), 1),
    writeLingerMaxMs: envInt(env, "FANOUT_WRITE_LINGER_MAX_MS", 10, 0, 1000),
    ...loadOpsSettings(env),
  };
}
