import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

import { ALERT_KINDS } from "./ops/alerts.js";

/**
 * The relay's Prometheus metrics, on a registry of its own (several relays can share a
 * process in tests). Every series carries `relay="<relay id>"` (a default label): one value
 * per process, so an operator can filter by relay without unbounded cardinality. No label
 * ever holds a channel, pattern, token or client address.
 */
export class RelayMetrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({ name: "fanout_connections", help: "Open SSE connections", registers: [this.registry] });
  readonly subscriptions = new Gauge({ name: "fanout_broker_subscriptions", help: "Broker subscriptions held by this relay", labelNames: ["kind"], registers: [this.registry] });
  readonly messagesIn = new Counter({ name: "fanout_messages_in_total", help: "Messages received from the broker (per routed copy)", registers: [this.registry] });
  readonly messagesOut = new Counter({ name: "fanout_messages_out_total", help: "Message frames queued to SSE clients", registers: [this.registry] });
  readonly published = new Counter({ name: "fanout_published_total", help: "Messages published through this relay's API", labelNames: ["result"], registers: [this.registry] });
  readonly slowDrops = new Counter({ name: "fanout_slow_consumer_disconnects_total", help: "Clients cut as slow consumers (all reasons)", registers: [this.registry] });
  readonly slowDropsByReason = new Counter({
    name: "fanout_slow_consumer_disconnects_by_reason_total",
    help: "Clients cut as slow consumers, by limit: hard, soft (over the soft limit for its period), budget (relay-wide budget)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  private queuedBytesSource: () => number = () => 0;
  readonly queuedBytes: Gauge = new Gauge({
    name: "fanout_queued_bytes",
    help: "Bytes held for SSE clients (queued or unsent in their sockets), the figure FANOUT_QUEUE_BUDGET_BYTES bounds",
    registers: [this.registry],
    collect: (): void => this.queuedBytes.set(this.queuedBytesSource()),
  });
  readonly replayed = new Counter({ name: "fanout_replayed_total", help: "Messages replayed from history on resume", registers: [this.registry] });
  readonly resets = new Counter({ name: "fanout_resets_total", help: "event: reset sent (cursor beyond retention, unknown or malformed)", labelNames: ["reason"], registers: [this.registry] });
  readonly catchUps = new Counter({ name: "fanout_catchups_total", help: "Catch-ups from the log after the broker link came back", registers: [this.registry] });
  readonly caughtUp = new Counter({ name: "fanout_caught_up_messages_total", help: "Messages recovered from the log after a broker drop", registers: [this.registry] });
  readonly messageFaults = new Counter({ name: "fanout_message_faults_total", help: "Failures on the message path, by place (the message was skipped, the relay went on)", labelNames: ["where"], registers: [this.registry] });
  readonly subscriptionChanges = new Counter({
    name: "fanout_subscription_changes_total",
    help: "Dynamic subscription changes: applied to a stream of this relay (local), or passed on to the relay holding the stream (forwarded)",
    labelNames: ["where"],
    registers: [this.registry],
  });
  readonly presenceEvents = new Counter({ name: "fanout_presence_events_total", help: "Presence join/leave events this relay published", labelNames: ["action"], registers: [this.registry] });
  readonly rejected = new Counter({ name: "fanout_rejected_total", help: "Requests refused, by code", labelNames: ["code"], registers: [this.registry] });
  readonly latency = new Histogram({
    name: "fanout_publish_to_write_seconds",
    help: "From publish (envelope ts) to frames queued for clients",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  private brokerReadySource: () => boolean = () => true;
  readonly brokerReady: Gauge = new Gauge({
    name: "fanout_broker_ready",
    help: "1 while the broker (Redis) is reachable from this relay, else 0 (the embedded broker is always 1)",
    registers: [this.registry],
    collect: (): void => this.brokerReady.set(this.brokerReadySource() ? 1 : 0),
  });
  private shardsReadySource: () => boolean[] = () => [];
  readonly shardReady: Gauge = new Gauge({
    name: "fanout_redis_shard_ready",
    help: "With a sharded log: 1 while shard <shard> (its position in REDIS_URL, from 0) is reachable, else 0",
    labelNames: ["shard"],
    registers: [this.registry],
    collect: (): void => this.shardsReadySource().forEach((ready, shard) => this.shardReady.set({ shard: String(shard) }, ready ? 1 : 0)),
  });
  readonly maxChannelSubscribers = new Gauge({
    name: "fanout_max_channel_subscribers",
    help: "Subscribers of this relay's most subscribed channel or pattern (at the last fleet heartbeat)",
    registers: [this.registry],
  });
  readonly alertsActive = new Gauge({ name: "fanout_alerts_active", help: "Health alerts this relay raises, by kind (see /v1/alerts)", labelNames: ["kind"], registers: [this.registry] });
  readonly redisUsedMemory = new Gauge({ name: "fanout_redis_used_memory_bytes", help: "Redis used_memory (INFO memory, at the last fleet heartbeat; 0 with the embedded broker)", registers: [this.registry] });
  readonly redisMaxMemory = new Gauge({ name: "fanout_redis_max_memory_bytes", help: "Redis maxmemory (0: unset, or the embedded broker)", registers: [this.registry] });

  /** Where the broker-ready gauge reads its value at each scrape. */
  watchBroker(ready: () => boolean): void {
    this.brokerReadySource = ready;
  }

  /** Where the per-shard ready gauge reads its values at each scrape (sharded log only). */
  watchShards(ready: () => boolean[]): void {
    this.shardsReadySource = ready;
  }

  /** Where the queued-bytes gauge reads its value at each scrape. */
  watchQueuedBytes(source: () => number): void {
    this.queuedBytesSource = source;
  }

  constructor(relayId?: string) {
    if (relayId) this.registry.setDefaultLabels({ relay: relayId });
    collectDefaultMetrics({ register: this.registry, prefix: "fanout_" });
    // Every kind is exported from the start (0), so rules and panels have a series to read.
    for (const kind of ALERT_KINDS) this.alertsActive.set({ kind }, 0);
  }
}
