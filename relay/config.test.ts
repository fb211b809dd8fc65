import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

describe("relay configuration", () => {
  it("has working defaults: port 8080, embedded broker, 4 partitions", () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.redisUrl).toBeUndefined();
    expect(c.log).toEqual({ prefix: "fanout", partitions: 4, maxLen: 1000, ttlMs: 3_600_000, dedupeSeconds: 300 });
    expect(c.maxBodyBytes).toBe(1024 * 1024);
    expect(c.publishKeys).toEqual([]);
    expect(c.patternLimits).toEqual({ maxStars: 8, maxBytes: 256, maxCost: 100_000, maxConnectionCost: 1_000_000 });
    expect(c.maxRelayPatternCost).toBe(5_000_000);
  });

  it("reads whitespace-separated REDIS_URL entries as independent shards, shard 0 first", () => {
    const c = loadConfig({ REDIS_URL: " redis://a:6379\n  redis+sentinel://s1:26379,s2:26379/m ", FANOUT_LOG_PARTITIONS: "8" });
    expect(c.redisShards).toEqual(["redis://a:6379", "redis+sentinel://s1:26379,s2:26379/m"]);
    // One entry (a URL or a Cluster seed list) is not sharded.
    expect(loadConfig({ REDIS_URL: "h1:7000,h2:7000" }).redisShards).toBeUndefined();
    expect(loadConfig({ REDIS_URL: "redis://a:6379" }).redisShards).toBeUndefined();
  });

  it("reads FANOUT_CLUSTER_PUBSUB (default classic) and FANOUT_CLUSTER_CLASSIC_COPY (default off) for a Cluster", () => {
    expect(loadConfig({ REDIS_URL: "h1:7000,h2:7000" })).toMatchObject({ clusterPubsub: "classic", clusterClassicCopy: false });
    expect(loadConfig({ REDIS_URL: "h1:7000,h2:7000", FANOUT_CLUSTER_PUBSUB: "sharded" })).toMatchObject({ clusterPubsub: "sharded", clusterClassicCopy: false });
    expect(loadConfig({ REDIS_URL: "h1:7000,h2:7000", FANOUT_CLUSTER_PUBSUB: "sharded", FANOUT_CLUSTER_CLASSIC_COPY: "on" }).clusterClassicCopy).toBe(true);
  });

  it("refuses bad values with a message naming the variable", () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ REDIS_URL: "h1:7000,h2:7000", FANOUT_CLUSTER_PUBSUB: "spublish" }, /FANOUT_CLUSTER_PUBSUB must be classic or sharded/],
      [{ REDIS_URL: "redis://a:6379", FANOUT_CLUSTER_PUBSUB: "sharded" }, /FANOUT_CLUSTER_PUBSUB=sharded needs a Redis Cluster REDIS_URL/],
      [{ FANOUT_CLUSTER_PUBSUB: "sharded" }, /FANOUT_CLUSTER_PUBSUB=sharded needs a Redis Cluster REDIS_URL/],
      [{ REDIS_URL: "h1:7000,h2:7000", FANOUT_CLUSTER_CLASSIC_COPY: "on" }, /FANOUT_CLUSTER_CLASSIC_COPY applies only with FANOUT_CLUSTER_PUBSUB=sharded/],
      [{ REDIS_URL: "h1:7000,h2:7000", FANOUT_CLUSTER_PUBSUB: "sharded", FANOUT_CLUSTER_CLASSIC_COPY: "yes" }, /FANOUT_CLUSTER_CLASSIC_COPY must be on or off/],
      [{ PORT: "eighty" }, /PORT must be a whole number/],
      [{ PORT: "70000" }, /PORT must be between 0 and 65535/],
      [{ FANOUT_LOG_PARTITIONS: "0" }, /FANOUT_LOG_PARTITIONS must be between 1 and 64/],
      [{ FANOUT_LOG_PREFIX: "app{1}" }, /FANOUT_LOG_PREFIX must be 1 to 64 of .* \(no braces or glob characters\), got "app\{1\}"/],
      [{ FANOUT_LOG_PREFIX: "app*" }, /FANOUT_LOG_PREFIX must be 1 to 64/],
      [{ FANOUT_MAX_BODY_BYTES: "-1" }, /FANOUT_MAX_BODY_BYTES must be a whole number/],
      [{ REDIS_URL: "http://x" }, /REDIS_URL must be/],
      [{ REDIS_URL: "redis://a:6379 h1:7000,h2:7000" }, /REDIS_URL lists 2 shards .*a Cluster cannot be a shard/],
      [{ REDIS_URL: "redis://a:1 redis://b:1 redis://c:1 redis://d:1" }, /REDIS_URL lists 4 shards but FANOUT_LOG_PARTITIONS=4 leaves shard 2 without a partition; use more partitions \(e\.g\. 16\)/],
      [{ FANOUT_CORS_ORIGINS: "*,https://a.example" }, /FANOUT_CORS_ORIGINS/],
      [{ FANOUT_JWKS_URL: "file:///etc/keys" }, /FANOUT_JWKS_URL must be an http\(s\) URL/],
      [{ FANOUT_MAX_PATTERN_COST: "2000000" }, /FANOUT_MAX_CONNECTION_PATTERN_COST must be at least FANOUT_MAX_PATTERN_COST/],
      [{ FANOUT_MAX_RELAY_PATTERN_COST: "5000" }, /FANOUT_MAX_RELAY_PATTERN_COST must be at least/],
      [{ FANOUT_REQUEST_TIMEOUT_MS: "0" }, /FANOUT_REQUEST_TIMEOUT_MS must be between 1000 and 600000/],
      [{ FANOUT_TRUSTED_PROXIES: "10.0.0.0/8,proxy.internal" }, /FANOUT_TRUSTED_PROXIES: "proxy.internal" is not an IP address/],
      [{ FANOUT_QUEUE_SOFT_BYTES: String(64 * 1024 * 1024) }, /FANOUT_QUEUE_SOFT_BYTES .* must not exceed FANOUT_QUEUE_MAX_BYTES/],
      [{ FANOUT_QUEUE_BUDGET_BYTES: "1000" }, /FANOUT_QUEUE_BUDGET_BYTES must be between 1048576/],
      [{ FANOUT_QUEUE_SOFT_SECONDS: "-1" }, /FANOUT_QUEUE_SOFT_SECONDS must be a whole number/],
      [{ FANOUT_STREAM_EXPIRY: "maybe" }, /FANOUT_STREAM_EXPIRY must be on or off/],
      [{ FANOUT_COMPRESSION: "br" }, /FANOUT_COMPRESSION must be off or gzip/],
      [{ FANOUT_RELAY_ID: "relay a" }, /FANOUT_RELAY_ID must be 1 to 64 characters/],
      [{ FANOUT_FLEET_HEARTBEAT_MS: "50" }, /FANOUT_FLEET_HEARTBEAT_MS must be between 100/],
      [{ FANOUT_FLEET_HEARTBEAT_MS: "1000", FANOUT_FLEET_TTL_MS: "1500" }, /FANOUT_FLEET_TTL_MS \(1500\) must be at least twice FANOUT_FLEET_HEARTBEAT_MS/],
      [{ FANOUT_ALERT_REDIS_MEMORY_PERCENT: "120" }, /FANOUT_ALERT_REDIS_MEMORY_PERCENT must be between 0 and 100/],
      [{ FANOUT_ALERT_WINDOW_SECONDS: "0" }, /FANOUT_ALERT_WINDOW_SECONDS must be between 1/],
      [{ FANOUT_PRESENCE_HEARTBEAT_MS: "1000", FANOUT_PRESENCE_TTL_MS: "1500" }, /FANOUT_PRESENCE_TTL_MS \(1500\) must be at least twice FANOUT_PRESENCE_HEARTBEAT_MS/],
      [{ FANOUT_PRESENCE_HEARTBEAT_MS: "10" }, /FANOUT_PRESENCE_HEARTBEAT_MS must be between 50/],
      [{ FANOUT_PRESENCE_CHANNELS: "chat:*,a\u0001b" }, /FANOUT_PRESENCE_CHANNELS entries must be globs/],
    ];
    for (const [env, msg] of cases) expect(() => loadConfig(env), JSON.stringify(env)).toThrow(msg);
    expect(() => loadConfig({ PORT: "x" })).toThrow(ConfigError);
  });

  it("waits for no replicas by default; FANOUT_PUBLISH_REPLICAS needs Redis and a finite timeout", () => {
    expect(loadConfig({}).publishReplicas).toEqual({ count: 0, timeoutMs: 1000 });
    expect(loadConfig({ REDIS_URL: "redis://a:6379", FANOUT_PUBLISH_REPLICAS: "2", FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS: "250" }).publishReplicas).toEqual({ count: 2, timeoutMs: 250 });
    expect(() => loadConfig({ FANOUT_PUBLISH_REPLICAS: "1" })).toThrow(/FANOUT_PUBLISH_REPLICAS needs REDIS_URL/);
    expect(() => loadConfig({ REDIS_URL: "redis://a:6379", FANOUT_PUBLISH_REPLICAS: "-1" })).toThrow(/FANOUT_PUBLISH_REPLICAS must be a whole number/);
    // 0 would be WAIT's "block forever".
    expect(() => loadConfig({ REDIS_URL: "redis://a:6379", FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS: "0" })).toThrow(/FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS must be between 1 and 60000/);
  });

  it("has presence off by default, refreshed every 5 s with a TTL of three beats", () => {
    expect(loadConfig({}).presence).toEqual({ channels: [], heartbeatMs: 5000, ttlMs: 15_000 });
    expect(loadConfig({ FANOUT_PRESENCE_CHANNELS: "chat:*, doc:*", FANOUT_PRESENCE_HEARTBEAT_MS: "1000" }).presence).toEqual({ channels: ["chat:*", "doc:*"], heartbeatMs: 1000, ttlMs: 3000 });
  });

  it("defaults the slow-consumer limits to Redis's pubsub output-buffer limits (32 MiB hard, 8 MiB for 60 s) and a 256 MiB budget", () => {
    const c = loadConfig({});
    expect([c.queueMaxBytes, c.queueSoftBytes, c.queueSoftSeconds, c.queueBudgetBytes]).toEqual([32 * 1024 * 1024, 8 * 1024 * 1024, 60, 256 * 1024 * 1024]);
    // A hard limit below the default soft one pulls the soft one down with it.
    expect(loadConfig({ FANOUT_QUEUE_MAX_BYTES: String(256 * 1024) }).queueSoftBytes).toBe(256 * 1024);
  });

  it("leaves compressed streams off unless FANOUT_COMPRESSION=gzip", () => {
    expect(loadConfig({}).compression).toBe("off");
    expect(loadConfig({ FANOUT_COMPRESSION: "GZIP" }).compression).toBe("gzip");
  });

  it("defaults the fleet heartbeat to 5 s with a TTL of three beats, and the alerts to the seed's monitor thresholds", () => {
    const c = loadConfig({});
    expect(c.relayId).toBeUndefined();
    expect(c.fleet).toEqual({ heartbeatMs: 5000, ttlMs: 15_000, topChannels: 20 });
    expect(c.alerts).toEqual({ inactiveSeconds: 300, channelSubscribers: 1000, memoryBytes: 1024 * 1024 * 1024, redisMemoryPercent: 80, windowSeconds: 300, catchUps: 5, resets: 100, slowDrops: 50 });
    expect(loadConfig({ FANOUT_FLEET_HEARTBEAT_MS: "2000" }).fleet.ttlMs).toBe(6000);
  });

  it("accepts every documented REDIS_URL form", () => {
    for (const url of ["redis://127.0.0.1:6379", "rediss://user:pw@host:6380/2", "redis+sentinel://h1:26379,h2:26379/mymaster", "10.0.0.1:7000,10.0.0.2:7000"]) {
      expect(loadConfig({ REDIS_URL: url }).redisUrl).toBe(url);
    }
  });

  it("stops `npm start` with exit code 2 and a clear message on a bad value", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "relay/main.ts"], { env: { ...process.env, PORT: "nope" }, encoding: "utf8", timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/configuration error: PORT must be a whole number/);
  });
});
