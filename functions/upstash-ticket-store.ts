import type { Redis } from "@upstash/redis/cloudflare";
import { ticketKey, type TicketStore } from "../protocol/auth/ticket-store.js";
import type { CircuitBreaker } from "./circuit-breaker.js";

/**
 * Subscribe tickets over Upstash REST, under the same keys as the relay's Redis store
 * (`ticketKey`), so a ticket minted at the edge is redeemed, once,
 * by any relay on that Redis.
 */
export class UpstashTicketStore implements TicketStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly breaker: CircuitBreaker,
  ) {}

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    await this.breaker.run("store ticket", () => this.redis.set(this.key(key), value, { px: ttlMs }));
  }

  async take(key: string): Promise<string | undefined> {
    const v = await this.breaker.run("take ticket", () => this.redis.getdel<string>(this.key(key)));
    return v ?? undefined;
  }

  private key(k: string): string {
    return ticketKey(this.prefix, k);
  }
}
