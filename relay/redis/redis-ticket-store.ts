import { ticketKey, type TicketStore } from "../../protocol/auth/ticket-store.js";
import { unavailable } from "../../protocol/errors.js";
import type { RedisClient } from "./redis-connection.js";

/**
 * Tickets in Redis, so a ticket issued by one relay is used once across all of them:
 * `SET key value PX ttl` to issue, `GETDEL` (Redis ≥ 6.2) to use. Keys are
 * `ticketKey` (each in a slot of its own on a Cluster). Runs on the broker's command
 * connection, so commands fail fast (503) while Redis is down.
 */
export class RedisTicketStore implements TicketStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  private key(k: string): string {
    return ticketKey(this.prefix, k);
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

}
