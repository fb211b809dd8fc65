/** A message as the relay delivers it (SSE `data`). */
export interface Envelope<T = unknown> {
  /** Message id (`<partition>-<ms>-<seq>`, or `x-…` for a plain Redis PUBLISH): stable across redeliveries, use it to process idempotently. */
  id: string;
  channel: string;
  /** The pattern subscription that matched, when it was not an exact channel subscription. */
  pattern?: string;
  type?: string;
  /**
   * The publisher's metadata (`source`, `correlation_id`, W3C `traceparent`, …): string
   * values, at most 16 keys and 2 KiB; absent when the message has none.
   */
  meta?: Record<string, string>;
  data: T;
  /** Publish time, ms since the epoch. */
  ts: number;
}

/**
 * Message types mapped to the shape of their `data`, for typed handlers:
 * `new FanoutClient<{ "order.created": { id: number } }>(…)`, then
 * `client.on("order.created", (m) => m.data.id)`. `"message"` names untyped messages.
 */
export type EventMap = Record<string, unknown>;

/** `event: ready`: every subscription of this connection is live. */
export interface ReadyInfo {
  connection: string;
  channels: string[];
  patterns: string[];
  /** Authorizes changes to this stream's subscriptions (`subscribe`/`unsubscribe`); keep it to this page. */
  secret?: string;
}

/** Why the relay could not resume from the last id: `retention`, `malformed`, `unknown` or `limit`. */
export type ResetReason = "retention" | "malformed" | "unknown" | "limit" | (string & {});

export interface ResetInfo {
  reason: ResetReason;
  message?: string;
}
