/** Who a stream is: the `sub` of its token and its `info` claim; `sub` "" is anonymous. */
export interface PresenceIdentity {
  sub: string;
  info?: Record<string, unknown>;
}

export interface PresenceMemberCount extends PresenceIdentity {
  connections: number;
}

/**
 * Presence entries, one per (channel, stream), each alive until its expiry unless refreshed:
 * so a relay that dies without a word has its members leave by themselves. Every change
 * reports whether it was a user's first stream on the channel (join) or their last (leave),
 * atomically, so across relays one join and one leave are reported per user.
 */
export interface PresenceStore {
  /** True when this is the user's first stream on the channel (never for anonymous). */
  join(channel: string, stream: string, who: PresenceIdentity, expiresAt: number): Promise<boolean>;
  /** The user, when this was their last stream on the channel (never for anonymous). */
  leave(channel: string, stream: string): Promise<PresenceIdentity | undefined>;
  /** Moves these entries' expiry; returns those that were no longer there (swept meanwhile). */
  refresh(channel: string, streams: string[], expiresAt: number): Promise<string[]>;
  /** Removes entries expired by `now`; returns the users whose last stream that was. */
  sweep(channel: string, now: number): Promise<PresenceIdentity[]>;
  /** Live entries (at most `max` streams read), grouped by user, and the anonymous count. */
  list(channel: string, now: number, max: number): Promise<{ members: PresenceMemberCount[]; anonymous: number }>;
  stats(channel: string, now: number): Promise<{ connections: number; users: number; anonymous: number }>;
}
