import type { TicketStore } from "../../protocol/auth/ticket-store.js";
import { unavailable } from "../../protocol/errors.js";
import { connect, type RedisClient } from "./redis-connection.js";

/**
 * Tickets in Redis, so a ticket issued by one relay is used once across all of them:
 * `SET key value PX ttl` to issue, `GETDEL` (Redis ≥ 6.2) to use. Keys are
 * `{<prefix>:ticket:<sha256 of the ticket>}`, each in a slot of its own on a Cluster.
 * Its own connection, opened on first use; commands fail fast (503) while Redis is down.
 */
export class RedisTicketStore implements TicketStore {
  private readonly redis: RedisClient;

  constructor(
    url: string,
    private readonly prefix: string,
  ) {
    this.redis = connect(url, { lazyConnect: true, enableOfflineQueue: true, maxRetriesPerRequest: 1, commandTimeout: 2000 });
    this.redis.on("error", () => undefined /* surfaced as 503s */);
  }

  private key(k: string): string {
    return `{${this.prefix}:ticket:${k}}`;
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    try {
      await this.redis.set(this.key(key), value, "PX", ttlMs);
    } catch {
      throw unavailable("Redis is unreachable; tickets cannot be issued", 2);
    }
  }

  async take(key: string): Promise<string | undefined> {
    try {
      return (await this.redis.getdel(this.key(key))) ?? undefined;
    } catch {
      throw unavailable("Redis is unreachable; tickets cannot be checked", 2);
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
