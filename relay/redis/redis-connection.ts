import { Cluster, Redis, type RedisOptions } from "ioredis";

export type RedisClient = Redis | Cluster;

interface HostPort {
  host: string;
  port: number;
}

export type RedisTopology =
  | { kind: "standalone"; url: string }
  | { kind: "sentinel"; sentinels: HostPort[]; name: string; username?: string; password?: string }
  | { kind: "cluster"; nodes: HostPort[] };

function hostPort(s: string, defaultPort: number): HostPort {
  const t = s.trim();
  // [v6]:port or host:port
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(t) ?? /^([^:]+)(?::(\d+))?$/.exec(t);
  if (!m) throw new Error(`REDIS_URL: cannot parse node "${t}"`);
  return { host: m[1], port: Number(m[2] || defaultPort) };
}

/**
 * Turns REDIS_URL into a topology. Supported forms:
 * - `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS)
 * - `redis+sentinel://[user:pass@]host:port[,host:port…]/<master name>`
 * - `host:port,host:port…` (Redis Cluster seed nodes; `rediss://` per node is not supported)
 */
export function parseRedisUrl(url: string): RedisTopology {
  if (url.startsWith("redis+sentinel://")) {
    const rest = url.slice("redis+sentinel://".length);
    const slash = rest.indexOf("/");
    const authority = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? "" : rest.slice(slash + 1);
    const at = authority.lastIndexOf("@");
    const userinfo = at < 0 ? "" : authority.slice(0, at);
    const hosts = at < 0 ? authority : authority.slice(at + 1);
    const colon = userinfo.indexOf(":");
    const username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon)) || undefined;
    const password = colon < 0 ? undefined : decodeURIComponent(userinfo.slice(colon + 1)) || undefined;
    const sentinels = hosts.split(",").filter(Boolean).map((h) => hostPort(h, 26379));
    const name = decodeURIComponent(path.split(/[/?#]/)[0]) || "mymaster";
    return { kind: "sentinel", sentinels, name, username, password };
  }
  if (!/^rediss?:\/\//.test(url) && url.includes(",")) {
    return { kind: "cluster", nodes: url.split(",").filter((s) => s.trim()).map((h) => hostPort(h, 6379)) };
  }
  return { kind: "standalone", url };
}

/**
 * A client for commands. On Cluster the client-level options (lazyConnect, offline queue,
 * retry) belong to the Cluster object, not to the per-node connections (which ioredis
 * always creates lazily, with an offline queue): with `enableOfflineQueue: false` the
 * Cluster fails fast while it is not ready or the slot's node is not connected.
 */
export function connect(url: string, base: RedisOptions): RedisClient {
  const t = parseRedisUrl(url);
  if (t.kind === "sentinel") {
    return new Redis({
      ...base,
      sentinels: t.sentinels,
      name: t.name,
      username: t.username,
      password: t.password,
      // Sentinels answer quickly or not at all; try the next one soon.
      sentinelRetryStrategy: (times: number) => Math.min(100 * times, 1000),
      // Drop the connection as soon as a sentinel announces +switch-master, instead of writing
      // to the old master until the sentinel reconfigures it (seconds of split brain).
      failoverDetector: true,
      // A write reaching a demoted master (mid-failover): reconnect, through the sentinels.
      reconnectOnError: (err: Error) => (/^READONLY/.test(err.message) ? 2 : false),
    });
  }
  if (t.kind === "cluster") {
    const { lazyConnect, enableOfflineQueue, retryStrategy, ...nodeOptions } = base;
    return new Cluster(t.nodes, {
      redisOptions: nodeOptions, // node connections always queue while they lazily connect
      lazyConnect,
      enableOfflineQueue: enableOfflineQueue ?? true,
      clusterRetryStrategy: (times: number) => (retryStrategy ? (retryStrategy(times) ?? null) : Math.min(100 * times, 2000)),
      shardedSubscribers: false,
      slotsRefreshTimeout: 2000,
    });
  }
  return new Redis(t.url, base);
}

/**
 * A client for SUBSCRIBE/PSUBSCRIBE. Standalone and Sentinel: as `connect`. Cluster: classic
 * (non-sharded) Pub/Sub is broadcast to every node over the cluster bus, so one plain
 * connection to any node sees every message. A plain `Redis` keeps the standalone semantics
 * the broker relies on (`ready`/`close` events, autoResubscribe, in-order replies for the
 * marker barrier), which the Cluster's internal subscriber does not expose. When its node is
 * unreachable it moves on to the next known node (seed nodes plus whatever `discover`
 * returns, e.g. the command client's current node list).
 */
export function connectSubscriber(url: string, base: RedisOptions, discover?: () => HostPort[]): Redis {
  const t = parseRedisUrl(url);
  if (t.kind !== "cluster") return connect(url, base) as Redis;
  const seeds = t.nodes;
  let current = seeds[0];
  const candidates = (): HostPort[] => {
    const seen = new Set<string>();
    const out: HostPort[] = [];
    for (const n of [...(discover?.() ?? []), ...seeds]) {
      const k = `${n.host}:${n.port}`;
      if (!seen.has(k)) {
        seen.add(k);
        out.push(n);
      }
    }
    return out;
  };
  const sub: Redis = new Redis({
    ...base,
    host: current.host,
    port: current.port,
    retryStrategy: (times: number) => {
      // Every failed attempt tries another node: the one we had may be gone for good.
      const list = candidates();
      const i = list.findIndex((n) => n.host === current.host && n.port === current.port);
      current = list[(i + 1) % list.length] ?? current;
      // The standalone connector reads host/port from these options on every connect.
      sub.options.host = current.host;
      sub.options.port = current.port;
      const d = base.retryStrategy?.(times);
      return typeof d === "number" ? d : Math.min(100 * times, 2000);
    },
  });
  return sub;
}
