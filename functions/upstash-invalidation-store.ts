import type { Redis } from "@upstash/redis/cloudflare";
import { tagSetKey } from "../routes/cache-tags.js";
import { hookDeliveryKey, type InvalidationStore } from "../routes/invalidation-store.js";
import type { CircuitBreaker } from "./circuit-breaker.js";

/** InvalidationStore over Upstash REST; each method is one HTTP round trip. */
export class UpstashInvalidationStore implements InvalidationStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly breaker: CircuitBreaker,
  ) {}

  async readTags(tags: readonly string[]): Promise<string[]> {
    const p = this.redis.pipeline();
    for (const t of tags) p.smembers(tagSetKey(t, this.prefix));
    const sets = await this.breaker.run("read tags", () => p.exec<string[][]>());
    return [...new Set(sets.flat().map(String))];
  }

  async deleteKeys(keys: readonly string[], fromTags: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    const tx = this.redis.multi();
    tx.del(...keys);
    for (const t of fromTags) tx.srem(tagSetKey(t, this.prefix), ...keys);
    const [deleted] = await this.breaker.run("delete keys", () => tx.exec<number[]>());
    return Number(deleted);
  }

  async claimDelivery(id: string, ttlSeconds: number): Promise<boolean> {
    const r = await this.breaker.run("claim delivery", () => this.redis.set(this.deliveryKey(id), "1", { nx: true, ex: ttlSeconds }));
    return r !== null;
  }

  async releaseDelivery(id: string): Promise<void> {
    await this.breaker.run("release delivery", () => this.redis.del(this.deliveryKey(id)));
  }

  private deliveryKey(id: string): string {
    return hookDeliveryKey(this.prefix, id);
  }
}
