import { randomUUID } from "node:crypto";
import type { Cluster } from "ioredis";
import { balancedTags, keySlot } from "../../protocol/cluster-tags.js";
import { partitionOf } from "../../protocol/partition.js";
import type { Position } from "../../protocol/position.js";
import type { LogSettings } from "../../protocol/publish-script.js";
import type { PublishMessage, PublishResult } from "../../protocol/publish-request.js";
import type { Broker, BrokerListener, Delivery, LogEntry, MessageLog, PartitionState, SubscriptionKind } from "../broker/broker.js";
import { PatternIndex } from "../broker/pattern-index.js";
import { ClusterShardLinks } from "./cluster-shard-links.js";
import { RedisBroker } from "./redis-broker.js";
import { NO_REPLICAS, type PublishReplicas } from "./replicated-publish.js";
import type { RedisClient } from "./redis-connection.js";

/**
 * Redis Cluster with sharded Pub/Sub (`FANOUT_CLUSTER_PUBSUB=sharded`). The partitions' keys
 * carry balanced hash tags (protocol/cluster-tags.ts), so they spread evenly over the masters;
 * the publish script SPUBLISHes each message on its partition's shard channel, which only that
 * partition's master (and its replicas) carry, instead of a PUBLISH the Cluster broadcasts to
 * every node.
 *
 * Log messages arrive on the shard links (cluster-shard-links.ts): one hub link per
 * partition, each held and caught up from the log on its own. The classic connection of a
 * RedisBroker stays for interoperability: it delivers plain PUBLISHes from other programs
 * (live only) on the relay's channels and patterns, and drops the envelopes the publish
 * script PUBLISHes there when `FANOUT_CLUSTER_CLASSIC_COPY` is on (the shard links deliver
 * those). Its commands connection runs the script, log reads and the stores beside the broker.
 */
export class ShardedClusterBroker implements Broker, MessageLog {
  readonly partitions: number;
  /** One link per partition (its shard subscriptions), then the classic connection (no partition). */
  readonly links: readonly (readonly number[])[];
  private readonly settings: LogSettings;
  private readonly classic: RedisBroker;
  private shards?: ClusterShardLinks;
  private listener?: BrokerListener;
  /** The relay's globs, matched here against the channel of each firehose message (by literal prefix: broker/pattern-index.ts). */
  private readonly globs = new PatternIndex();

  constructor(url: string, settings: LogSettings, classicCopy: boolean, replicas: PublishReplicas = NO_REPLICAS, commandTimeoutMs?: number) {
    this.partitions = settings.partitions;
    this.settings = { ...settings, tags: balancedTags(settings.prefix, settings.partitions), pubsub: classicCopy ? "both" : "sharded" };
    this.classic = new RedisBroker(url, this.settings, undefined, "shard", replicas, commandTimeoutMs);
    this.links = [...Array.from({ length: this.partitions }, (_, p) => [p]), []];
  }

  async start(listener: BrokerListener): Promise<void> {
    this.listener = listener;
    const classicLink = this.partitions;
    await this.classic.start({
      deliver: (d) => listener.deliver(d, classicLink),
      down: () => listener.down(classicLink),
      recovered: () => listener.recovered(classicLink),
      fault: (where, err) => listener.fault(where, err),
    });
    this.shards = new ClusterShardLinks(this.classic.commands as Cluster, this.settings, randomUUID().slice(0, 8), this.classic.secrets, () => this.classic.reloadSecrets(), {
      message: (d, p, viaFirehose) => this.onShardMessage(d, p, viaFirehose),
      down: (p, planned) => listener.down(p, planned),
      recovered: (p) => listener.recovered(p),
      fault: (where, err) => listener.fault(where, err),
    });
    await this.shards.start();
    void this.warnIfUnbalanced();
  }

  /**
   * Says at start-up when a master serves no partition (fewer partitions than masters, or a
   * slot layout the balanced tags do not fit): its Pub/Sub capacity is wasted.
   */
  private async warnIfUnbalanced(): Promise<void> {
    try {
      const ranges = (await (this.classic.commands as Cluster).cluster("SLOTS")) as unknown as Array<[number, number, [string, number]]>;
      const count = new Map<string, number>(ranges.map((r) => [`${r[2][0]}:${r[2][1]}`, 0]));
      for (const tag of this.settings.tags!) {
        const slot = keySlot(tag);
        const r = ranges.find(([from, to]) => slot >= from && slot <= to);
        if (r) count.set(`${r[2][0]}:${r[2][1]}`, (count.get(`${r[2][0]}:${r[2][1]}`) ?? 0) + 1);
      }
      const idle = [...count].filter(([, n]) => n === 0).map(([node]) => node);
      if (idle.length > 0) {
        console.warn(
          `[fanout] FANOUT_CLUSTER_PUBSUB=sharded: no log partition on master ${idle.join(", ")} (FANOUT_LOG_PARTITIONS=${this.partitions} over ${count.size} masters); ` +
            `use 16–64 partitions, several per master`,
        );
      }
    } catch {
      /* the Cluster is not reachable yet: nothing to say */
    }
  }

  /** A firehose message is matched here: the exact channel's copy first, then one per matching glob. */
  private onShardMessage(d: Delivery, p: number, viaFirehose: boolean): void {
    const l = this.listener;
    if (!l) return;
    if (!viaFirehose) return l.deliver(d, p);
    let first = true;
    if (this.shards!.holds(d.channel, p)) {
      l.deliver(d, p);
      first = false;
    }
    if (this.globs.size === 0) return;
    this.globs.forEachMatch(d.channel, (glob) => {
      l.deliver({ ...d, pattern: glob, again: !first }, p);
      first = false;
    });
  }

  /** The commands connection (Cluster), for the stores beside the broker. */
  get commands(): RedisClient {
    return this.classic.commands;
  }

  /** Per master (`host:port`), the partitions whose shard channels this relay holds there. */
  placement(): Record<string, number[]> {
    return this.shards?.placement() ?? {};
  }

  isReady(): boolean {
    return this.classic.isReady() && (this.shards?.started() ?? false);
  }

  async subscribe(kind: SubscriptionKind, name: string): Promise<void> {
    if (kind === "channel") {
      await Promise.all([this.classic.subscribe(kind, name), this.shards!.addChannel(name, partitionOf(name, this.partitions))]);
      return;
    }
    await this.classic.subscribe(kind, name);
    this.globs.add(name);
    this.shards!.setFirehose(true);
  }

  async unsubscribe(kind: SubscriptionKind, name: string): Promise<void> {
    if (kind === "channel") {
      await Promise.all([this.classic.unsubscribe(kind, name), this.shards!.removeChannel(name, partitionOf(name, this.partitions))]);
      return;
    }
    this.globs.delete(name);
    if (this.globs.size === 0) this.shards!.setFirehose(false);
    await this.classic.unsubscribe(kind, name);
  }

  publish(messages: PublishMessage[]): Promise<PublishResult[]> {
    return this.classic.publish(messages);
  }

  read(partition: number, after: Position, limit: number): Promise<LogEntry[]> {
    return this.classic.read(partition, after, limit);
  }

  state(partition: number): Promise<PartitionState> {
    return this.classic.state(partition);
  }

  settled(): Promise<Position[]> {
    return Promise.all(Array.from({ length: this.partitions }, (_, p) => this.shards!.settled(p)));
  }

  async close(): Promise<void> {
    this.listener = undefined;
    this.shards?.close();
    await this.classic.close();
  }
}
