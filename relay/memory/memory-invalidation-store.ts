import type { InvalidationStore } from "../../routes/invalidation-store.js";

/**
 * Invalidation on the embedded broker: there is no shared cache to delete from (deleted is
 * always 0), but the broadcast still goes out and hook redeliveries are still recognised.
 */
export class MemoryInvalidationStore implements InvalidationStore {
  private readonly claims = new Map<string, number>();

  async readTags(): Promise<string[]> {
    return [];
  }

  async deleteKeys(): Promise<number> {
    return 0;
  }

  async claimDelivery(id: string, ttlSeconds: number): Promise<boolean> {
    const now = Date.now();
    for (const [k, exp] of this.claims) if (exp <= now) this.claims.delete(k);
    if ((this.claims.get(id) ?? 0) > now) return false;
    this.claims.set(id, now + ttlSeconds * 1000);
    return true;
  }

  async releaseDelivery(id: string): Promise<void> {
    this.claims.delete(id);
  }
}
