import { tagSetKey } from "../../routes/cache-tags.js";
import { hookDeliveryKey, type InvalidationStore } from "../../routes/invalidation-store.js";
import { unavailable } from "../../protocol/errors.js";
import type { RedisClient } from "./redis-connection.js";

/** Cache invalidation on the relay's Redis: the same key layout as the edge functions use. */
export class RedisInvalidationStore implements InvalidationStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  async readTags(tags: readonly string[]): Promise<string[]> {
    if (tags.length === 0) return [];
    const sets = await this.run(() => Promise.all(tags.map((t) => this.redis.smembers(tagSetKey(t, this.prefix)))));
    return [...new Set(sets.flat())];
  }

  async deleteKeys(keys: readonly string[], fromTags: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    // One DEL per key: on a Cluster the keys live in different slots.
    const deleted = await this.run(() => Promise.all(keys.map((k) => this.redis.del(k))));
    await this.run(() => Promise.all(fromTags.map((t) => this.redis.srem(tagSetKey(t, this.prefix), ...keys))));
    return deleted.reduce((a, n) => a + n, 0);
  }

  async claimDelivery(id: string, ttlSeconds: number): Promise<boolean> {
    return (await this.run(() => this.redis.set(this.deliveryKey(id), "1", "EX", ttlSeconds, "NX"))) === "OK";
  }

  async releaseDelivery(id: string): Promise<void> {
    await this.run(() => this.redis.del(this.deliveryKey(id)));
  }

  private deliveryKey(id: string): string {
    return hookDeliveryKey(this.prefix, id);
  }

  private async run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      // The client's error text (connection state, addresses, server replies) is for the
      // operator's log, not for whoever sent the request.
      console.warn("[fanout] invalidation store:", (err as Error).message);
      throw unavailable("Redis is unreachable", 2);
    }
  }
}
