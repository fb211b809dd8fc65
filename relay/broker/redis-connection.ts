import { Cluster, Redis, type RedisOptions } from "ioredis";

export type RedisClient = Redis | Cluster;

/**
 * Turns REDIS_URL into ioredis clients. Supported forms:
 * - `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS)
 * - `redis+sentinel://[user:pass@]host:port[,host:port…]/<master name>`
 * - `host:port,host:port…` (Redis Cluster seed nodes; `rediss://` per node is not supported)
 */
export function connect(url: string, base: RedisOptions): RedisClient {
  if (url.startsWith("redis+sentinel://")) {
    const u = new URL(url.replace("redis+sentinel://", "http://"));
    const hosts = url.slice("redis+sentinel://".length).split("/")[0].replace(/^.*@/, "");
    const sentinels = hosts.split(",").map((h) => {
      const [host, port] = h.split(":");
      return { host, port: Number(port || 26379) };
    });
    const name = decodeURIComponent(u.pathname.replace(/^\//, "")) || "mymaster";
    return new Redis({ ...base, sentinels, name, username: u.username || undefined, password: decodeURIComponent(u.password) || undefined });
  }
  if (!/^rediss?:\/\//.test(url) && url.includes(",")) {
    const nodes = url.split(",").map((h) => {
      const [host, port] = h.trim().split(":");
      return { host, port: Number(port) };
    });
    return new Cluster(nodes, { redisOptions: base, shardedSubscribers: false, enableOfflineQueue: base.enableOfflineQueue });
  }
  return new Redis(url, base);
}
