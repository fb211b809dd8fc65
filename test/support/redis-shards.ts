import { afterAll, beforeAll } from "vitest";
import { Redis } from "ioredis";
import { partitionOf } from "../../protocol/partition.js";
import { shardOfPartition } from "../../protocol/shard-map.js";
import { RedisServer } from "./redis-server.js";

/**
 * `n` private redis-servers for the file, used as the independent shards of one log
 * (`REDIS_URL` lists them, whitespace-separated, shard 0 first). `extraArgs` go to every
 * server (e.g. append-only persistence for a test that restarts one).
 */
export function redisShardsFixture(n: number, extraArgs: string[] = []): {
  readonly servers: RedisServer[];
  /** A client per shard, for looking at what landed where. */
  readonly clients: Redis[];
  /** The `REDIS_URL` value listing the shards. */
  readonly url: string;
} {
  const servers: RedisServer[] = [];
  const clients: Redis[] = [];
  beforeAll(async () => {
    for (let i = 0; i < n; i++) servers.push(await RedisServer.start(extraArgs));
    for (const s of servers) {
      const c = new Redis(s.url, { maxRetriesPerRequest: 1 });
      c.on("error", () => undefined /* a test may stop a shard */);
      clients.push(c);
    }
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    for (const s of servers) await s.dispose();
  });
  return {
    servers,
    clients,
    get url() {
      return servers.map((s) => s.url).join(" ");
    },
  };
}

/** The first channel `<stem><i>` whose partition lives on `shard`. */
export function channelOnShard(stem: string, shard: number, partitions: number, shards: number): string {
  for (let i = 0; i < 10_000; i++) {
    const ch = `${stem}${i}`;
    if (shardOfPartition(partitionOf(ch, partitions), shards) === shard) return ch;
  }
  throw new Error(`no channel ${stem}* on shard ${shard}`);
}
