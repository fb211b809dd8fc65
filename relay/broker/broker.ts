import type { Position } from "../../protocol/position.js";
import type { Publisher } from "../../protocol/publisher.js";

export type SubscriptionKind = "channel" | "pattern";

/**
 * One message as the broker hands it to the hub: parsed once, whatever the number of
 * clients. `partition`/`pos` are set when the message is in the durable log (published
 * through edge-fanout); plain Redis PUBLISHes have neither and are live-only.
 */
export interface Delivery {
  channel: string;
  /** The subscribed pattern this copy was routed by (Redis `pmessage`). */
  pattern?: string;
  id: string;
  partition?: number;
  pos?: Position;
  type?: string;
  /** Publisher metadata as JSON text (protocol/meta.ts), carried untouched. */
  metaJson?: string;
  dataJson: string;
  ts: number;
  /**
   * Another copy of the message delivered just before (the same publish, routed by one more
   * of this relay's subscriptions). The hub sends a client one copy per publish.
   */
  again?: boolean;
}

export interface LogEntry {
  channel: string;
  id: string;
  partition: number;
  pos: Position;
  type?: string;
  /** Publisher metadata as JSON text (protocol/meta.ts), carried untouched. */
  metaJson?: string;
  dataJson: string;
  ts: number;
}

export interface PartitionState {
  /** Last id ever appended ("0-0" when empty). */
  last: Position;
  /**
   * Retention boundary: a cursor strictly below it may have missed trimmed entries. Exact on
   * the memory broker; on Redis it is the first retained entry once anything was trimmed
   * (Redis does not record trimmed ids), so a cursor at exactly the last trimmed entry also
   * gets a (harmless) reset.
   */
  gapBefore: Position;
}

export interface BrokerListener {
  /** `link`: which of the broker's `links` it arrived on (0 when it has one). */
  deliver(d: Delivery, link?: number): void;
  /**
   * The subscription link dropped: live messages may be missing until `recovered`. `planned`:
   * the broker resubscribes on purpose (sharded Pub/Sub switching a partition to its
   * firehose); held and caught up the same way, but not counted as a catch-up.
   */
  down(link?: number, planned?: boolean): void;
  /** Subscriptions are live again after a drop: catch up from the log before going live. */
  recovered(link?: number): void;
  /**
   * Something on the message path threw. The broker catches at every event handler and
   * timer and reports here (the hub counts and logs it); the next message is handled as usual.
   */
  fault(where: string, err: unknown): void;
}

/**
 * Live pub/sub. Subscriptions here are per relay (the hub reference-counts clients onto
 * them); `subscribe` resolves once the broker confirms, so a message published afterwards
 * is delivered.
 */
export interface Broker extends Publisher {
  readonly partitions: number;
  /**
   * The broker's subscription links (connections) and, for each, the log partitions whose
   * messages arrive on it, in order, and stop when it drops. Unset: one link, all partitions.
   */
  readonly links?: readonly (readonly number[])[];
  start(listener: BrokerListener): Promise<void>;
  subscribe(kind: SubscriptionKind, name: string): Promise<void>;
  unsubscribe(kind: SubscriptionKind, name: string): Promise<void>;
  /** Whether publish and subscribe can reach the backing store right now. */
  isReady(): boolean;
  close(): Promise<void>;
}

/** The durable history beside the live stream (kept by every broker in this project). */
export interface MessageLog {
  /** Entries of one partition strictly after `after`, oldest first. */
  read(partition: number, after: Position, limit: number): Promise<LogEntry[]>;
  state(partition: number): Promise<PartitionState>;
  /**
   * For each partition, a log position such that every message at or below it has already
   * reached the listener (read in order with the live stream). Lets the hub move its cursor
   * over partitions it has no traffic in, so a new stream's first id is not stale.
   */
  settled(): Promise<Position[]>;
}
