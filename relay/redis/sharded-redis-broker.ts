import type { Position } from "../../protocol/position.js";
import type { LogSettings } from "../../protocol/publish-script.js";
import type { PublishMessage, PublishResult } from "../../protocol/publish-request.js";
import { partitionOf } from "../../protocol/partition.js";
import { ShardMap } from "../../protocol/shard-map.js";
import { ShardedPublisher } from "../../protocol/sharded-publisher.js";
import type { Broker, BrokerListener, LogEntry, MessageLog, PartitionState, SubscriptionKind } from "../broker/broker.js";
import { RedisBroker } from "./redis-broker.js";
import type { RedisClient } from "./redis-connection.js";
import { NO_REPLICAS, type PublishReplicas } from "./replicated-publish.js";

/**
 * The log sharded over independent Redis servers (`REDIS_URL` with several entries): one
 * RedisBroker per shard, each holding the partitions the shard map gives it (its streams,
 * secrets, idempotency keys and settle markers), with its own command and subscriber
 * connections. This class only routes:
 *
 * - a channel subscription goes to its partition's shard, where its messages are published;
 *   a pattern goes to every shard, since its channels live on all of them;
 * - publishes go through the shared ShardedPublisher (the edge functions use the same); with
 *   `FANOUT_PUBLISH_REPLICAS` each shard's part waits for that shard's replicas;
 * - log reads go to the partition's shard;
 * - each shard's subscriber connection is one link of the hub: a shard that drops holds and
 *   catches up only its own partitions while the others keep delivering.
 *
 * Stores beside the broker (tickets, fleet, invalidation) use shard 0's command connection.
 */
export class ShardedRedisBroker implements Broker, MessageLog {
  readonly partitions: number;
  readonly links: readonly (readonly number[])[];
  private readonly map: ShardMap;
  private readonly shards: RedisBroker[];
  private readonly publisher: ShardedPublisher;

  constructor(urls: readonly string[], settings: LogSettings, replicas: PublishReplicas = NO_REPLICAS, commandTimeoutMs?: number) {
    this.partitions = settings.partitions;
    this.map = new ShardMap(settings.partitions, urls.length);
    this.shards = urls.map((u, s) => new RedisBroker(u, settings, this.map.partitionsOf[s], "classic", replicas, commandTimeoutMs));
    this.links = this.map.partitionsOf;
    this.publisher = new ShardedPublisher(this.map, this.shards, settings.prefix, (s) => this.shards[s].commands.status === "ready");
  }

  async start(listener: BrokerListener): Promise<void> {
    await Promise.all(
      this.shards.map((b, s) =>
        b.start({
          deliver: (d) => listener.deliver(d, s),
          down: () => listener.down(s),
          recovered: () => listener.recovered(s),
          fault: (where, err) => listener.fault(where, err),
        }),
      ),
    );
  }

  /** Shard 0's command connection: where tickets, the fleet view and cache invalidation live. */
  get commands(): RedisClient {
    return this.shards[0].commands;
  }

  /** Each shard's command connection, shard 0 first (the fleet view reports the fullest shard's memory). */
  get shardCommands(): RedisClient[] {
    return this.shards.map((b) => b.commands);
  }

  /** Per shard, whether both its connections are up. */
  shardsReady(): boolean[] {
    return this.shards.map((b) => b.isReady());
  }

  /** Every shard reachable: a stream may subscribe to patterns, which need all of them. */
  isReady(): boolean {
    return this.shards.every((b) => b.isReady());
  }

  async subscribe(kind: SubscriptionKind, name: string): Promise<void> {
    if (kind === "channel") return this.channelShard(name).subscribe(kind, name);
    const done = await Promise.allSettled(this.shards.map((b) => b.subscribe(kind, name)));
    const failed = done.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (!failed) return;
    // All or nothing, as the hub reference-counts it as one subscription.
    await Promise.allSettled(this.shards.map((b, i) => (done[i].status === "fulfilled" ? b.unsubscribe(kind, name) : undefined)));
    throw failed.reason;
  }

  async unsubscribe(kind: SubscriptionKind, name: string): Promise<void> {
    if (kind === "channel") return this.channelShard(name).unsubscribe(kind, name);
    await Promise.all(this.shards.map((b) => b.unsubscribe(kind, name)));
  }

  publish(messages: PublishMessage[]): Promise<PublishResult[]> {
    return this.publisher.publish(messages);
  }

  read(partition: number, after: Position, limit: number): Promise<LogEntry[]> {
    return this.shards[this.map.shardOf[partition]].read(partition, after, limit);
  }

  state(partition: number): Promise<PartitionState> {
    return this.shards[this.map.shardOf[partition]].state(partition);
  }

  async settled(): Promise<Position[]> {
    const ends = await Promise.all(this.shards.map((b) => b.settled()));
    return Array.from({ length: this.partitions }, (_, p) => ends[this.map.shardOf[p]][p]);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((b) => b.close()));
  }

  private channelShard(channel: string): RedisBroker {
    return this.shards[this.map.shardOf[partitionOf(channel, this.partitions)]];
  }
}
