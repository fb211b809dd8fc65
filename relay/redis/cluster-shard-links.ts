import { Redis, type Cluster } from "ioredis";
import { keySlot } from "../../protocol/cluster-tags.js";
import { streamKey } from "../../protocol/partition.js";
import { type Position, ZERO } from "../../protocol/position.js";
import { partitionTag, type LogSettings } from "../../protocol/publish-script.js";
import { firehoseChannel, patternFlagKey, shardChannelPrefix, shardMarkerChannel } from "../../protocol/shard-channels.js";
import type { Delivery } from "../broker/broker.js";
import { clusterSlotOwner } from "./cluster-slot-owner.js";
import { LiveClassifier } from "./live-classifier.js";
import { ShardSettles } from "./shard-settles.js";

/** A partition with no message for this long gets a marker round trip (the idle probe). */
export const IDLE_PROBE_MS = 5000;
/** The pattern flag's lifetime and how often relays holding patterns extend it. */
export const PATTERN_FLAG_TTL_MS = 60_000;
const PATTERN_FLAG_REFRESH_MS = 10_000;
const RETRY_MAX_MS = 1000;
/** One attempt to subscribe a partition on its owner; a master that accepts but never answers (stopped, partitioned) must not hold the partition forever. */
const SYNC_TIMEOUT_MS = 4000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

export interface ShardLinkEvents {
  /** A message of partition `p`: from its channel's shard channel, or from its firehose. */
  message(d: Delivery, partition: number, viaFirehose: boolean): void;
  down(partition: number, planned: boolean): void;
  recovered(partition: number): void;
  fault(where: string, err: unknown): void;
}

/** A plain connection to one master, holding the shard subscriptions of the partitions it owns. */
interface NodeLink {
  readonly key: string;
  readonly redis: Redis;
  readonly partitions: Set<PartitionLink>;
  dead: boolean;
  /** The first connect (partitions arriving meanwhile wait for it). */
  connected?: Promise<void>;
}

interface PartitionLink {
  readonly p: number;
  readonly slot: number;
  readonly key: string;
  readonly prefix: string;
  readonly firehose: string;
  readonly marker: string;
  readonly flag: string;
  /** The client channels of this partition the relay subscribes. */
  readonly channels: Set<string>;
  node?: NodeLink;
  /** Shard channels subscribed on `node`. */
  readonly subscribed: Set<string>;
  /** Subscriptions confirmed on the slot's owner (a marker made the round trip). */
  up: boolean;
  /** The hub was told `down` and waits for `recovered`. */
  held: boolean;
  everUp: boolean;
  syncing: boolean;
  /** Something changed while a sync ran: run it again before going up. */
  again: boolean;
  lastSeen: number;
  probing: boolean;
  /** The partition's (S)SUBSCRIBE changes run one after another, so `subscribed` stays true. */
  lock: Promise<void>;
}

/**
 * The relay's sharded Pub/Sub subscriptions on Redis Cluster: one plain ioredis connection per
 * master, holding every shard channel of the partitions that master owns (a partition's
 * channels, firehose and marker on one connection, so the marker orders after its messages).
 *
 * Each partition is one link of the hub. Any doubt about a partition — its connection closed,
 * a `moved` (an unsolicited `sunsubscribe` from a migration or a failover, or MOVED to an
 * SSUBSCRIBE), a marker that does not come back, a pattern flag found expired — resyncs it:
 * the hub holds its live messages (`down`), the owner is read again from CLUSTER SLOTS until
 * a connection there is subscribed and a marker made the round trip, and the hub catches up
 * from the log (`recovered`). So a loss is repaired from the log, never silent: ioredis's own
 * `shardedSubscribers` was not used because it lost partitions silently after a failover.
 *
 * While the relay holds a pattern, every partition subscribes its firehose instead of its
 * channels (one copy per publish; the broker matches channels and globs locally), and the
 * relay keeps the partition's pattern flag alive so publishers SPUBLISH the firehose.
 */
export class ClusterShardLinks {
  private readonly parts: PartitionLink[];
  private readonly byTag = new Map<string, PartitionLink>();
  private readonly nodes = new Map<string, NodeLink>();
  private readonly live: LiveClassifier;
  private readonly settles: ShardSettles;
  private firehose = false;
  private closed = false;
  private timer?: NodeJS.Timeout;
  private lastFlagRefresh = 0;

  constructor(
    private readonly cmd: Cluster,
    settings: LogSettings,
    private readonly relayId: string,
    secrets: (string | undefined)[],
    onMismatch: () => void,
    private readonly events: ShardLinkEvents,
  ) {
    this.live = new LiveClassifier(settings.partitions, onMismatch, "dropped", secrets);
    this.parts = Array.from({ length: settings.partitions }, (_, p) => {
      const tag = partitionTag(settings, p);
      const pl: PartitionLink = {
        p,
        slot: keySlot(tag),
        key: streamKey(settings.prefix, p, tag),
        prefix: shardChannelPrefix(tag),
        firehose: firehoseChannel(tag),
        marker: shardMarkerChannel(tag, relayId),
        flag: patternFlagKey(tag),
        channels: new Set(),
        subscribed: new Set(),
        up: false,
        held: false,
        everUp: false,
        syncing: false,
        again: false,
        lastSeen: 0,
        probing: false,
        lock: Promise.resolve(),
      };
      this.byTag.set(tag, pl);
      return pl;
    });
    this.settles = new ShardSettles(cmd, (p, end) => this.live.settledTo([p], [end]));
  }

  /**
   * Subscribes every partition; resolves when all are up or after `waitMs`, so a relay started
   * while the Cluster is down still serves /healthz (the rest keep trying, held, and /readyz
   * says 503 until every partition has been up once).
   */
  async start(waitMs = 3000): Promise<void> {
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
    const all = Promise.all(this.parts.map((pl) => this.resync(pl)));
    await Promise.race([all, sleep(waitMs)]);
  }

  /**
   * Every partition has been subscribed on its owner at least once. A partition resyncing
   * later (a migration, a failover, the switch to the firehose) is held and caught up, so new
   * streams need not wait for it.
   */
  started(): boolean {
    return this.parts.every((pl) => pl.everUp);
  }

  /** Whether the relay subscribes this channel exactly (firehose messages are matched against it). */
  holds(channel: string, partition: number): boolean {
    return this.parts[partition].channels.has(channel);
  }

  /** Partitions whose shard channels currently sit on the connection to each master (`host:port`). */
  placement(): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (const [k, n] of this.nodes) out[k] = [...n.partitions].map((pl) => pl.p).sort((a, b) => a - b);
    return out;
  }

  async addChannel(channel: string, partition: number): Promise<void> {
    const pl = this.parts[partition];
    pl.channels.add(channel);
    await this.update(pl);
  }

  async removeChannel(channel: string, partition: number): Promise<void> {
    const pl = this.parts[partition];
    pl.channels.delete(channel);
    if (!this.firehose) await this.update(pl).catch(() => undefined);
  }

  /**
   * Switches every partition between its channels and its firehose. Resolves at once: each
   * partition is resynced (held, resubscribed, caught up from the log), so a message
   * published from now on reaches the relay whenever the switch completes.
   */
  setFirehose(on: boolean): void {
    if (this.firehose === on) return;
    this.firehose = on;
    for (const pl of this.parts) void this.resync(pl, true);
  }

  /** The partition's current end as the relay's connection has received it (ZERO unless up). */
  async settled(partition: number): Promise<Position> {
    const pl = this.parts[partition];
    if (!pl.up) return ZERO;
    return this.settle(pl);
  }

  /** Brings one partition's subscriptions in line with what the relay holds. */
  private async update(pl: PartitionLink): Promise<void> {
    // Not up: a sync is running or pending; it reads `channels` again before going up.
    if (!pl.up || !pl.node) {
      pl.again = true;
      return;
    }
    try {
      await this.reconcile(pl, pl.node);
    } catch (err) {
      // A MOVED or a drop resyncs the partition (held, then caught up from the log), which
      // covers this subscription; anything else is the caller's error.
      if (pl.up) {
        void this.resync(pl);
        throw err;
      }
    }
  }

  private reconcile(pl: PartitionLink, node: NodeLink): Promise<void> {
    const run = pl.lock.then(() => this.reconcileNow(pl, node));
    pl.lock = run.catch(() => undefined);
    return run;
  }

  private async reconcileNow(pl: PartitionLink, node: NodeLink): Promise<void> {
    if (pl.node !== node) throw new Error("the partition moved to another connection");
    const want = new Set<string>([pl.marker]);
    if (this.firehose) want.add(pl.firehose);
    else for (const c of pl.channels) want.add(pl.prefix + c);
    const drop = [...pl.subscribed].filter((c) => !want.has(c));
    const add = [...want].filter((c) => !pl.subscribed.has(c));
    if (drop.length > 0) {
      drop.forEach((c) => pl.subscribed.delete(c));
      await node.redis.sunsubscribe(...drop);
    }
    if (add.length > 0) {
      await node.redis.ssubscribe(...add);
      if (pl.node === node) add.forEach((c) => pl.subscribed.add(c));
    }
  }

  /**
   * Holds the partition and subscribes it again on its owner until a marker comes back.
   * Never rejects: its callers (handlers, timers, setFirehose) do not wait on it, and a throw
   * from the hub's `down`/`recovered` is reported as a fault rather than left unhandled.
   */
  private resync(pl: PartitionLink, planned = false): Promise<void> {
    return this.resyncNow(pl, planned).catch((err: unknown) => this.events.fault("redis shard resync", err));
  }

  private async resyncNow(pl: PartitionLink, planned: boolean): Promise<void> {
    if (this.closed) return;
    if (pl.up) {
      pl.up = false;
      if (!pl.held) {
        pl.held = true;
        this.events.down(pl.p, planned);
      }
    }
    if (pl.syncing) {
      pl.again = true;
      return;
    }
    pl.syncing = true;
    try {
      for (let attempt = 0; !this.closed; attempt++) {
        pl.again = false;
        try {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            this.syncOnce(pl),
            new Promise((_, reject) => {
              timer = setTimeout(() => {
                // A master that stops answering holds every partition on its connection (and
                // this partition's subscribe lock): close it, so they all resync.
                pl.node?.redis.disconnect();
                reject(new Error(`subscribing partition ${pl.p} timed out`));
              }, SYNC_TIMEOUT_MS);
            }),
          ]).finally(() => clearTimeout(timer));
          if (pl.again) continue;
          break;
        } catch {
          this.detach(pl);
          // The command client's slot map may be as stale as ours was (ioredis refreshes it
          // only on a MOVED or a lost connection, not when a master goes silent).
          this.cmd.refreshSlotsCache();
          // Always told: a drop during a planned resubscribe makes it count as one.
          pl.held = true;
          this.events.down(pl.p, false);
          await sleep(Math.min(50 * 2 ** Math.min(attempt, 5), RETRY_MAX_MS));
        }
      }
      if (this.closed) return;
      pl.up = true;
      pl.everUp = true;
      pl.lastSeen = Date.now();
      if (pl.held) {
        pl.held = false;
        this.events.recovered(pl.p);
      }
    } finally {
      pl.syncing = false;
    }
  }

  private async syncOnce(pl: PartitionLink): Promise<void> {
    const owner = await clusterSlotOwner(this.cmd, pl.slot);
    if (pl.node && (pl.node.dead || pl.node.key !== owner)) this.detach(pl);
    if (!pl.node) {
      const node = await this.nodeLink(owner);
      node.partitions.add(pl);
      pl.node = node;
    }
    // Set before subscribing: from here on every publish also goes to the firehose, and what
    // was published before the subscription is read from the log by the catch-up.
    if (this.firehose) await this.cmd.set(pl.flag, "1", "PX", PATTERN_FLAG_TTL_MS);
    await this.reconcile(pl, pl.node);
    await this.settle(pl);
  }

  /** Takes the partition off its connection (closing the connection when it was the last). */
  private detach(pl: PartitionLink): void {
    const node = pl.node;
    pl.node = undefined;
    const subscribed = [...pl.subscribed];
    pl.subscribed.clear();
    if (!node) return;
    node.partitions.delete(pl);
    if (node.partitions.size === 0) this.dropNode(node);
    else if (!node.dead && subscribed.length > 0) void node.redis.sunsubscribe(...subscribed).catch(() => undefined);
  }

  private dropNode(node: NodeLink): void {
    if (this.nodes.get(node.key) === node) this.nodes.delete(node.key);
    if (!node.dead) {
      node.dead = true;
      node.redis.disconnect();
    }
  }

  /** The connection to a master, made on first use; it is never reconnected (a resync makes a new one). */
  private async nodeLink(key: string): Promise<NodeLink> {
    const existing = this.nodes.get(key);
    if (existing && !existing.dead) {
      await existing.connected;
      if (existing.dead) throw new Error(`connection to ${key} lost`);
      return existing;
    }
    const sep = key.lastIndexOf(":");
    const redis = new Redis({
      host: key.slice(0, sep),
      port: Number(key.slice(sep + 1)),
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResubscribe: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
      retryStrategy: () => null,
    });
    const node: NodeLink = { key, redis, partitions: new Set(), dead: false };
    this.nodes.set(key, node);
    redis.on("error", () => undefined /* the close that follows resyncs */);
    const lost = () => {
      try {
        const parts = [...node.partitions];
        node.partitions.clear();
        this.dropNode(node);
        for (const pl of parts) {
          if (pl.node === node) {
            pl.node = undefined;
            pl.subscribed.clear();
          }
          void this.resync(pl);
        }
      } catch (err) {
        this.events.fault("redis shard link", err);
      }
    };
    redis.on("close", lost);
    // An unsolicited `sunsubscribe` (migration, failover) or MOVED to an SSUBSCRIBE: the
    // slot map changed under this connection; which channels went is not said, so all of
    // its partitions resync. Once: a migration pushes one per shard channel of the slot.
    redis.once("moved", () => redis.disconnect());
    redis.on("smessage", (channel: string, payload: string) => this.onMessage(node, channel, payload));
    node.connected = redis.connect().catch((err: unknown) => {
      this.dropNode(node);
      throw err;
    });
    await node.connected;
    return node;
  }

  private onMessage(node: NodeLink, channel: string, payload: string): void {
    try {
      const close = channel.indexOf("}");
      const pl = close > 0 ? this.byTag.get(channel.slice(1, close)) : undefined;
      if (!pl || pl.node !== node) return;
      pl.lastSeen = Date.now();
      const rest = channel.slice(close + 1);
      if (channel === pl.marker) {
        this.settles.onMarker(pl.p, payload);
      } else if (channel === pl.firehose) {
        // Only the current mode's copies count: a copy of the other mode arriving around a
        // switch would hide the one that counts (the classifier drops a position it has seen).
        // The switch holds the partition and catches up from the log, so nothing is missed.
        if (!this.firehose) return;
        const d = this.live.classifyFirehose(payload);
        if (d) this.events.message(d, pl.p, true);
      } else if (rest.startsWith(":c:")) {
        if (this.firehose) return;
        const d = this.live.classify(channel.slice(pl.prefix.length), undefined, payload);
        if (d) this.events.message(d, pl.p, false);
      }
    } catch (err) {
      this.events.fault("redis smessage", err);
    }
  }

  private settle(pl: PartitionLink): Promise<Position> {
    return this.settles.settle(pl.p, pl.key, pl.marker);
  }

  /** Once a second: the idle probe of quiet partitions, and the pattern flags' refresh. */
  private tick(): void {
    const now = Date.now();
    for (const pl of this.parts) {
      if (!pl.up || pl.probing || now - pl.lastSeen < IDLE_PROBE_MS) continue;
      pl.probing = true;
      this.settle(pl).then(
        () => (pl.probing = false),
        () => {
          pl.probing = false;
          // The marker did not come back: the subscriptions may be gone without a word, and
          // the master with them (the command client's slot map with it).
          this.cmd.refreshSlotsCache();
          void this.resync(pl);
        },
      );
    }
    if (!this.firehose || now - this.lastFlagRefresh < PATTERN_FLAG_REFRESH_MS) return;
    this.lastFlagRefresh = now;
    for (const pl of this.parts) {
      if (!pl.up) continue;
      // Extend only: a flag found gone means publishes may have skipped the firehose, so the
      // partition resyncs (sets it again, then catches up from the log).
      this.cmd.pexpire(pl.flag, PATTERN_FLAG_TTL_MS).then(
        (ok) => {
          if (Number(ok) !== 1) void this.resync(pl);
        },
        () => undefined /* the probe or the connection's close resyncs */,
      );
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const n of [...this.nodes.values()]) this.dropNode(n);
  }
}
