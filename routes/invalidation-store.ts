/**
 * The storage seam under cache invalidation and deployment hooks: Upstash REST at the
 * edge, ioredis or memory in the relay. Cache entries are plain keys; a tag is a set of
 * keys (see cache-tags.ts for the layout).
 */
export interface InvalidationStore {
  /** The keys indexed under any of these tags (the union of their sets). */
  readTags(tags: readonly string[]): Promise<string[]>;
  /**
   * Deletes the keys and removes them from these tags' sets, returning how many keys
   * existed. Only the members that were read are removed, so an entry tagged meanwhile
   * keeps its index.
   */
  deleteKeys(keys: readonly string[], fromTags: readonly string[]): Promise<number>;
  /**
   * Records a hook delivery id for `ttlSeconds`. False when it was already recorded: the
   * delivery is a redelivery and must not be broadcast again.
   */
  claimDelivery(id: string, ttlSeconds: number): Promise<boolean>;
  /** Forgets a claim whose processing failed, so the provider's retry is not dropped. */
  releaseDelivery(id: string): Promise<void>;
}

/**
 * The Redis key remembering a hook delivery: one layout for the relay's and the edge's
 * stores. `id` is `<provider>:<hex sha256 of the delivery key>` (hook-delivery.ts), so the
 * key is bounded and names nothing from the delivery.
 */
export function hookDeliveryKey(prefix: string, id: string): string {
  return `${prefix}:hook:${id}`;
}
