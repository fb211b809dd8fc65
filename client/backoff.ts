export interface BackoffOptions {
  /**
   * The first reconnection window in ms, doubled on each failed attempt. The relay's
   * `retry:` field replaces it once received, as EventSource does. Default 1000.
   */
  initialMs?: number;
  /** Largest window in ms. Default 30000. */
  maxMs?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialMs: 1000, maxMs: 30_000 };

/**
 * Exponential backoff with full jitter: a uniform delay in `[0, min(max, base·2^attempt)]`.
 * When a relay drains, every one of its clients drops at once; spreading their reconnects
 * over the whole window keeps them from arriving together at the next relay.
 * `floorMs` (from `Retry-After`) is a minimum the server asked for: the jitter goes on top.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, floorMs = 0, random: () => number = Math.random): number {
  const window = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(floorMs + random() * window);
}
