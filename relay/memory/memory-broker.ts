import { FanoutError } from "../../protocol/errors.js";
import type { LogSettings } from "../../protocol/publish-script.js";
import type { PublishMessage, PublishResult } from "../../protocol/publish-request.js";
import { partitionOf } from "../../protocol/partition.js";
import { checkPublishable } from "../../protocol/reserved-channels.js";
import { comparePositions, formatMessageId, type Position, ZERO } from "../../protocol/position.js";
import type { Broker, BrokerListener, LogEntry, MessageLog, PartitionState, SubscriptionKind } from "../broker/broker.js";
import { SubscriptionSet } from "../broker/pattern-set.js";

interface Partition {
  entries: LogEntry[];
  last: Position;
  maxDeleted: Position;
}

/**
 * The embedded broker: one process, no Redis, the same semantics — an atomic log append per
 * publish (same ids and retention rules as the Redis script), idempotency, glob routing with
 * Redis's matcher, synchronous delivery in publish order.
 */
export class MemoryBroker implements Broker, MessageLog {
  readonly partitions: number;
  private readonly parts: Partition[];
  private readonly subs = new SubscriptionSet();
  private readonly dedupe = new Map<string, { result: PublishResult; expires: number }>();
  private listener?: BrokerListener;

  constructor(private readonly settings: LogSettings) {
    this.partitions = settings.partitions;
    this.parts = Array.from({ length: settings.partitions }, () => ({ entries: [], last: ZERO, maxDeleted: ZERO }));
  }

  async start(listener: BrokerListener): Promise<void> {
    this.listener = listener;
  }

  async subscribe(kind: SubscriptionKind, name: string): Promise<void> {
    if (kind === "channel") this.subs.channels.add(name);
    else this.subs.patterns.add(name);
  }

  async unsubscribe(kind: SubscriptionKind, name: string): Promise<void> {
    if (kind === "channel") this.subs.channels.delete(name);
    else this.subs.patterns.delete(name);
  }

  isReady(): boolean {
    return true;
  }

  async publish(messages: PublishMessage[]): Promise<PublishResult[]> {
    if (!this.listener) throw new FanoutError(503, "broker_unavailable", "broker not started");
    checkPublishable(messages, this.settings.prefix);
    const now = Date.now();
    this.sweepDedupe(now);
    return messages.map((m) => {
      const key = m.id === undefined ? undefined : `${m.channel}\u001f${m.id}`;
      const prev = key === undefined ? undefined : this.dedupe.get(key);
      if (prev && prev.expires > now) return { ...prev.result, duplicate: true };
      const entry = this.append(m, now);
      const receivers = this.subs.route(entry, (d) => this.listener!.deliver(d));
      const result: PublishResult = { id: entry.id, channel: m.channel, receivers, duplicate: false };
      if (key !== undefined) this.dedupe.set(key, { result, expires: now + this.settings.dedupeSeconds * 1000 });
      return result;
    });
  }

  private append(m: PublishMessage, now: number): LogEntry {
    const partition = partitionOf(m.channel, this.partitions);
    const part = this.parts[partition];
    // Stream-id rules: time-based, strictly increasing even if the clock steps back.
    const pos: Position = now > part.last.ms ? { ms: now, seq: 0 } : { ms: part.last.ms, seq: part.last.seq + 1 };
    const entry: LogEntry = { channel: m.channel, id: formatMessageId(partition, pos), partition, pos, type: m.type, metaJson: m.meta, dataJson: m.data, ts: now };
    part.entries.push(entry);
    part.last = pos;
    this.trim(part, now);
    return entry;
  }

  private trim(part: Partition, now: number): void {
    let drop = Math.max(0, part.entries.length - this.settings.maxLen);
    if (this.settings.ttlMs > 0) {
      const minMs = now - this.settings.ttlMs;
      while (drop < part.entries.length && part.entries[drop].pos.ms < minMs) drop++;
    }
    if (drop > 0) {
      part.maxDeleted = part.entries[drop - 1].pos;
      part.entries.splice(0, drop);
    }
  }

  private sweepDedupe(now: number): void {
    // Insertion order is expiry order (one window for all), so stop at the first live one.
    for (const [k, v] of this.dedupe) {
      if (v.expires > now) break;
      this.dedupe.delete(k);
    }
  }

  async read(partition: number, after: Position, limit: number): Promise<LogEntry[]> {
    const part = this.parts[partition];
    this.trim(part, Date.now());
    const e = part.entries;
    // Binary search for the first entry after `after`.
    let lo = 0;
    let hi = e.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (comparePositions(e[mid].pos, after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return e.slice(lo, lo + limit);
  }

  async state(partition: number): Promise<PartitionState> {
    const part = this.parts[partition];
    this.trim(part, Date.now());
    return { last: part.last, gapBefore: part.maxDeleted };
  }

  /** Publishing delivers synchronously, so the log's end is settled at any moment. */
  async settled(): Promise<Position[]> {
    return this.parts.map((p) => p.last);
  }

  async close(): Promise<void> {
    this.listener = undefined;
  }
}
