/**
 * Where subscribe tickets live between issue and use. Shared by every relay (and the edge)
 * that may see the ticket, so single use holds across processes: `take` must be atomic
 * (Redis GETDEL; a Map delete in one process).
 */
export interface TicketStore {
  /** Stores `value` under `key` for `ttlMs`. */
  put(key: string, value: string, ttlMs: number): Promise<void>;
  /** Returns the value and deletes it in one step; undefined when unknown, used or expired. */
  take(key: string): Promise<string | undefined>;
}

/**
 * The Redis key of a ticket (given the digest the store is keyed by): one layout for every
 * store on Redis, so a ticket minted at the edge is redeemed by a relay. Each key is its own
 * Cluster slot.
 */
export function ticketKey(prefix: string, digest: string): string {
  return `{${prefix}:ticket:${digest}}`;
}
