import type { Broker, SubscriptionKind } from "./broker/broker.js";
import { SubscriptionSet } from "./broker/pattern-set.js";
import type { Client } from "./client.js";
import type { RelayMetrics } from "./metrics.js";

interface Subscription {
  kind: SubscriptionKind;
  name: string;
  clients: Set<Client>;
  /** Resolves when the broker confirmed the subscription. */
  ready: Promise<void>;
  timer?: NodeJS.Timeout;
  /** Messages routed by it, and when the last one was (or when it was created): the fleet view's rates and idle alerts. */
  messages: number;
  lastActiveAt: number;
}

/** One subscription's figures for the fleet view and alerts (ops/fleet.ts). */
export interface SubscriptionActivity {
  kind: SubscriptionKind;
  name: string;
  subscribers: number;
  messages: number;
  lastActiveAt: number;
}

/**
 * The relay's broker subscriptions, reference-counted across all its clients: a thousand
 * browsers on one channel cost one Redis subscription. The first client subscribes, the last
 * one leaving releases it after a short delay (against churn), a failed subscription is
 * forgotten so the next client retries, and calls for one name never overtake each other.
 * Only clients' subscriptions live here: the broker's own (the Redis marker channel) are
 * outside the count, on reserved names no client can hold (protocol/reserved-channels.ts),
 * and the broker never releases them on a client's behalf.
 */
export class SubscriptionRegistry {
  private readonly channels = new Map<string, Subscription>();
  private readonly patterns = new Map<string, Subscription>();
  /** The same set as the maps, in the form that routes a log entry (catch-up). */
  readonly live = new SubscriptionSet();
  private readonly ops = new Map<string, Promise<void>>();

  constructor(
    private readonly broker: Broker,
    private readonly metrics: RelayMetrics,
    private readonly unsubscribeDelayMs: number,
  ) {}

  /**
   * The clients of the subscription a delivery was routed by (a pattern, or its channel),
   * counting the message on that subscription (one lookup on the hot path).
   */
  routeTo(channel: string, pattern: string | undefined, now: number): Set<Client> | undefined {
    const sub = pattern !== undefined ? this.patterns.get(pattern) : this.channels.get(channel);
    if (!sub) return undefined;
    sub.messages++;
    sub.lastActiveAt = now;
    return sub.clients;
  }

  *activity(): IterableIterator<SubscriptionActivity> {
    for (const m of [this.channels, this.patterns]) {
      for (const s of m.values()) yield { kind: s.kind, name: s.name, subscribers: s.clients.size, messages: s.messages, lastActiveAt: s.lastActiveAt };
    }
  }

  /** Adds the client everywhere; resolves once every broker subscription is confirmed. */
  add(c: Client): Promise<void[]> {
    return this.addNames(c, c.channels, c.patterns);
  }

  /** Adds the client to these names (its own list is the caller's); resolves once every one is confirmed. */
  addNames(c: Client, channels: readonly string[], patterns: readonly string[]): Promise<void[]> {
    const waits: Promise<void>[] = [];
    for (const name of channels) waits.push(this.join(this.channels, "channel", name, c));
    for (const name of patterns) waits.push(this.join(this.patterns, "pattern", name, c));
    return Promise.all(waits);
  }

  remove(c: Client): void {
    this.removeNames(c, c.channels, c.patterns);
  }

  removeNames(c: Client, channels: readonly string[], patterns: readonly string[]): void {
    for (const name of channels) this.leave(this.channels, name, c);
    for (const name of patterns) this.leave(this.patterns, name, c);
  }

  stats(): { channels: Record<string, number>; patterns: Record<string, number> } {
    const count = (m: Map<string, Subscription>) => Object.fromEntries([...m].map(([k, s]) => [k, s.clients.size]));
    return { channels: count(this.channels), patterns: count(this.patterns) };
  }

  private join(map: Map<string, Subscription>, kind: SubscriptionKind, name: string, c: Client): Promise<void> {
    let sub = map.get(name);
    if (!sub) {
      const ready = this.serialize(kind, name, () => this.broker.subscribe(kind, name));
      const created: Subscription = { kind, name, clients: new Set(), ready, messages: 0, lastActiveAt: Date.now() };
      sub = created;
      map.set(name, created);
      if (kind === "channel") this.live.channels.add(name);
      else this.live.patterns.add(name);
      this.metrics.subscriptions.inc({ kind });
      ready.catch(() => {
        // Forget a failed subscription so the next client tries again.
        if (map.get(name) === created) this.drop(map, created);
      });
    }
    if (sub.timer) {
      clearTimeout(sub.timer);
      sub.timer = undefined;
    }
    sub.clients.add(c);
    return sub.ready;
  }

  private leave(map: Map<string, Subscription>, name: string, c: Client): void {
    const sub = map.get(name);
    if (!sub || !sub.clients.delete(c) || sub.clients.size > 0) return;
    sub.timer = setTimeout(() => {
      if (sub.clients.size > 0 || map.get(name) !== sub) return;
      this.drop(map, sub);
      this.serialize(sub.kind, name, () => this.broker.unsubscribe(sub.kind, name)).catch(() => {
        /* the broker is down; its subscriptions are gone with the link */
      });
    }, this.unsubscribeDelayMs);
    sub.timer.unref();
  }

  private drop(map: Map<string, Subscription>, sub: Subscription): void {
    map.delete(sub.name);
    if (sub.kind === "channel") this.live.channels.delete(sub.name);
    else this.live.patterns.delete(sub.name);
    this.metrics.subscriptions.dec({ kind: sub.kind });
  }

  /** Broker calls for one name run in order, so an unsubscribe never overtakes a resubscribe. */
  private serialize(kind: SubscriptionKind, name: string, op: () => Promise<void>): Promise<void> {
    const key = `${kind}\u0000${name}`;
    const prev = this.ops.get(key) ?? Promise.resolve();
    const next = prev.then(op, op);
    const tail = next.catch(() => undefined);
    this.ops.set(key, tail);
    void tail.then(() => {
      if (this.ops.get(key) === tail) this.ops.delete(key);
    });
    return next;
  }
}
