import { randomUUID } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { keySlot } from "../../protocol/cluster-tags.js";
import { FanoutError, unavailable } from "../../protocol/errors.js";
import { parseStreamId, streamId, type Position, ZERO } from "../../protocol/position.js";
import { macKey, partitionTag, PUBLISH_SCRIPT, publishScriptArgs, publishScriptResults, randomSecret, type LogSettings } from "../../protocol/publish-script.js";
import type { PublishMessage, PublishResult } from "../../protocol/publish-request.js";
import { partitionOf, streamKey } from "../../protocol/partition.js";
import { checkPublishable, reservedPrefix } from "../../protocol/reserved-channels.js";
import type { Broker, BrokerListener, Delivery, LogEntry, MessageLog, PartitionState, SubscriptionKind } from "../broker/broker.js";
import { randomToken } from "../random-token.js";
import { LiveClassifier } from "./live-classifier.js";
import { PatternRoutes } from "./pattern-routes.js";
import { connect, connectSubscriber, type RedisClient } from "./redis-connection.js";
import { GroupCommit } from "./group-commit.js";
import { NO_REPLICAS, type PublishReplicas } from "./replicated-publish.js";

type Scripted = RedisClient & {
  fanoutPublish(numKeys: number, ...args: string[]): Promise<unknown>;
  fanoutSettle(numKeys: number, ...args: string[]): Promise<unknown>;
  fanoutSecret(numKeys: number, ...args: string[]): Promise<unknown>;
};

/** A partition's envelope secret: the one in Redis, or ARGV[1] (fresh randomness) if there is none yet. */
const SECRET_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1])
  v = ARGV[1]
end
return v
`;
/** A channel copy's globs (it is delivered as the channel's). */
const NO_GLOBS: readonly string[] = [];
/** `FANOUT_REDIS_COMMAND_TIMEOUT_MS`'s default. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 5000;
/** At most one secret reload per this interval when tags stop verifying. */
const SECRET_RELOAD_MS = 1000;

/**
 * Reads the last entry of each partition given and publishes them to this relay's marker
 * channel in one step: `<token> <id> <id> …`. Pub/Sub keeps order per publishing node, so
 * when the marker arrives every message logged up to those entries has arrived before it.
 * One call covers all partitions on a single Redis; on Cluster, one per partition (slot).
 */
const SETTLE_SCRIPT = `
local out = ARGV[2]
for i = 1, #KEYS do
  local r = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
  if #r > 0 then out = out .. ' ' .. r[1][1] else out = out .. ' 0-0' end
end
redis.call('PUBLISH', ARGV[1], out)
return out
`;
const SETTLE_TIMEOUT_MS = 2000;

/**
 * Redis broker: one connection for commands (publish script, log reads), one for
 * subscriptions. ioredis re-issues SUBSCRIBE/PSUBSCRIBE after a reconnect; once they are
 * live again the hub is told to catch up from the log, so the drop costs no message.
 *
 * What arrives on the subscription is classified by live-classifier.ts (only the log moves a
 * cursor). Clients' globs never reach Redis as such: Redis gets a few broad prefix patterns
 * (pattern-routes.ts) and the globs are matched here, so no client can make Redis's PUBLISH
 * slow for everyone.
 */
export class RedisBroker implements Broker, MessageLog {
  readonly partitions: number;
  private readonly cmd: Scripted;
  private readonly sub: Redis;
  private listener?: BrokerListener;
  private subReadyOnce = false;
  /** The subscriber connection has closed at least once (the hub was told `down`). */
  private subDropped = false;
  /** Pending settles by token: the partitions asked for, in the marker's order. */
  private readonly settleWaiters = new Map<string, { partitions: number[]; resolve: (ends: Position[]) => void }>();
  /** The log partitions kept on this Redis (all of them unless the log is sharded). */
  private readonly owned: number[];
  private readonly relayId = randomUUID().slice(0, 8);
  private readonly live: LiveClassifier;
  private secretsLoadedAt = 0;
  private secretsLoading?: Promise<void>;
  /** Clients' globs, carried by a few broad Redis patterns (see pattern-routes.ts). */
  private readonly globs = new PatternRoutes({ psubscribe: (p) => this.sub.psubscribe(p), punsubscribe: (p) => this.sub.punsubscribe(p) });
  /** The publish last forwarded to the hub (the classifier's object): its later deliveries are `again`. */
  private forwarded?: Delivery;
  /** A channel of this relay's own: subscribing to it after a reconnect is a barrier behind ioredis's resubscribes. */
  private readonly marker: string;
  /** `<prefix>:relay:` — reserved for relays' marker channels. */
  private readonly markerPrefix: string;
  /** Publish script calls of one event-loop turn, one pipeline per group (group-commit.ts). */
  readonly commit: GroupCommit;
  private readonly commandTimeoutMs: number;

  /**
   * `owned`: the partitions whose log, secrets and settle markers live on this Redis, when the
   * log is sharded over several (sharded-redis-broker.ts); default all.
   */
  constructor(
    url: string,
    private readonly settings: LogSettings,
    owned?: readonly number[],
    /**
     * `shard`: log messages reach the relay on shard channels (sharded Pub/Sub on Cluster,
     * cluster-shard-links.ts); this broker's classic connection delivers only plain PUBLISHes
     * and drops every verified envelope on it (a copy of the classic-compatible PUBLISH).
     */
    logVia: "classic" | "shard" = "classic",
    /** `FANOUT_PUBLISH_REPLICAS`: replicas that must confirm each publish (one WAIT per group, group-commit.ts). */
    private readonly replicas: PublishReplicas = NO_REPLICAS,
    /** `FANOUT_REDIS_COMMAND_TIMEOUT_MS`: how long a command may go unanswered before it fails (a silent server). */
    commandTimeoutMs = DEFAULT_COMMAND_TIMEOUT_MS,
  ) {
    this.partitions = settings.partitions;
    this.owned = owned ? [...owned] : Array.from({ length: settings.partitions }, (_, p) => p);
    this.markerPrefix = reservedPrefix(settings.prefix);
    this.live = new LiveClassifier(settings.partitions, () => this.reloadSecrets(), logVia === "shard" ? "all" : "plain");
    this.marker = `${this.markerPrefix}${this.relayId}`;
    const retryStrategy = (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000);
    // Commands fail fast while Redis is down (publish answers 503) instead of queueing, and
    // give up on a server that holds the connection but does not answer (stopped, swapping,
    // a network partition without a reset): without a bound a publish would wait until it
    // came back. A WAIT may take its own timeout first.
    this.commandTimeoutMs = Math.max(commandTimeoutMs, replicas.count > 0 ? replicas.timeoutMs + 1000 : 0);
    this.cmd = connect(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy, lazyConnect: true, commandTimeout: this.commandTimeoutMs }) as Scripted;
    // On Cluster the subscriber is a plain connection to one node (classic Pub/Sub reaches
    // every node), moving to another known node when that one is unreachable.
    this.sub = connectSubscriber(url, { enableOfflineQueue: true, maxRetriesPerRequest: null, retryStrategy, lazyConnect: true }, () =>
      this.isCluster() ? (this.cmd as Cluster).nodes("all").map((n) => ({ host: n.options.host ?? "127.0.0.1", port: n.options.port ?? 6379 })) : [],
    );
    this.cmd.defineCommand("fanoutPublish", { lua: PUBLISH_SCRIPT });
    this.cmd.defineCommand("fanoutSettle", { lua: SETTLE_SCRIPT });
    this.cmd.defineCommand("fanoutSecret", { lua: SECRET_SCRIPT });
    for (const c of [this.cmd, this.sub]) c.on("error", () => undefined /* surfaced through status and 503s */);
    // On Cluster the turn's partitions go as one call per node: the master ioredis would send
    // the partition's keys to now (its slot map, refreshed on MOVED).
    const slots = Array.from({ length: settings.partitions }, (_, p) => keySlot(partitionTag(settings, p)));
    const nodeOf = this.isCluster() ? (p: number) => (this.cmd as Cluster).slots[slots[p]]?.[0] : undefined;
    this.commit = new GroupCommit(this.cmd, this.replicas, (keys, args) => this.cmd.fanoutPublish(keys.length, ...keys, ...args), nodeOf);
  }

  async start(listener: BrokerListener): Promise<void> {
    this.listener = listener;
    const sub = this.sub;
    // Every handler on the message path catches: a payload that cannot be handled costs
    // that payload (counted by the hub), never the process or the messages after it.
    sub.on("message", (channel: string, payload: string) => {
      try {
        if (channel === this.marker) this.onMarker(payload);
        else if (channel.startsWith(this.markerPrefix)) this.live.interrupt();
        else this.onCopy(channel, undefined, payload, NO_GLOBS);
      } catch (err) {
        listener.fault("redis message", err);
      }
    });
    // Buffers: the relay matches clients' globs against the channel's bytes, as Redis does.
    sub.on("pmessageBuffer", (route: string, channel: Buffer, payload: Buffer) => {
      try {
        const name = channel.toString("utf8");
        // Relays' marker channels are internal: a pattern like `*` must not deliver them.
        if (name.startsWith(this.markerPrefix)) this.live.interrupt();
        else {
          // Matched once per copy; none: a broad route's traffic that no client glob matches.
          const globs = this.globs.matching(channel);
          if (globs.length === 0) this.live.interrupt();
          else this.onCopy(name, route, payload.toString("utf8"), globs);
        }
      } catch (err) {
        listener.fault("redis pmessage", err);
      }
    });
    sub.on("close", () => {
      try {
        this.subDropped = true;
        this.live.interrupt();
        listener.down();
      } catch (err) {
        listener.fault("redis close", err);
      }
    });
    sub.on("ready", () => {
      if (!this.subReadyOnce) {
        this.subReadyOnce = true;
        // The first connect is start()'s to finish, unless it failed (Redis down when the
        // relay started): then the hub was told `down` and is holding live messages until a
        // `recovered`, which only this path gives.
        if (!this.subDropped) return;
      }
      // Replies come in order: once the marker is confirmed, every resubscribe before it is live.
      // A settle then tells the classifier where the log ends, so a copy of something
      // published while the link was down is not taken for a log message.
      sub.subscribe(this.marker).then(
        async () => {
          await this.settled().catch(() => undefined);
          try {
            listener.recovered();
          } catch (err) {
            listener.fault("redis recovered", err);
          }
        },
        () => undefined /* dropped again; the next ready retries */,
      );
    });
    // Redis may have restarted without its data (and its secrets): reload on every reconnect.
    this.cmd.on("ready", () => void this.loadSecrets());
    // Start even when Redis is down: the relay serves /healthz and reports 503 until it is up.
    await Promise.all([this.cmd.connect().catch(() => undefined), sub.connect().catch(() => undefined)]);
    await this.loadSecrets();
    if (this.sub.status === "ready") {
      await sub.subscribe(this.marker).catch(() => undefined);
      // Where the log ends now: envelopes at or below it that arrive later are copies.
      await this.settled().catch(() => undefined);
    }
  }

  /**
   * One copy of a PUBLISH as Redis sent it: by the channel subscription, or by one of the
   * relay's Redis patterns (`globs`: the clients' globs matching its channel); a publish goes
   * to its globs once, on its first pattern copy.
   * Each resulting delivery but the first of a publish is marked `again`.
   */
  private onCopy(channel: string, route: string | undefined, payload: string, globs: readonly string[]): void {
    const d = this.live.classify(channel, route, payload);
    if (!d) return;
    if (route === undefined) this.forward(d, undefined);
    else if (this.globs.firstCopy(d)) for (const glob of globs) this.forward(d, glob);
  }

  private forward(d: Delivery, pattern: string | undefined): void {
    const again = this.forwarded === d;
    this.forwarded = d;
    this.listener?.deliver(pattern === undefined && !again ? d : { ...d, pattern, again });
  }

  /** Per partition, the envelope secret as loaded (shared with the shard links' classifier). */
  get secrets(): (string | undefined)[] {
    return this.live.secrets;
  }

  /** A tag did not verify: the secret may have changed (Redis lost its data); at most once a second. */
  reloadSecrets(): void {
    if (Date.now() - this.secretsLoadedAt >= SECRET_RELOAD_MS) void this.loadSecrets();
  }

  /**
   * Reads (creating where missing) each partition's envelope secret. Never throws: until it
   * succeeds, envelopes are delivered as plain data (live, without a log position).
   */
  private loadSecrets(): Promise<void> {
    this.secretsLoading ??= (async () => {
      this.secretsLoadedAt = Date.now();
      try {
        await Promise.all(
          this.owned.map(async (p) => {
            const v = await this.cmd.fanoutSecret(1, macKey(this.settings.prefix, p, partitionTag(this.settings, p)), randomSecret());
            if (typeof v === "string" && v.length > 0) this.live.secrets[p] = v;
          }),
        );
      } catch {
        /* Redis unreachable: the command link's next ready retries */
      } finally {
        this.secretsLoading = undefined;
      }
    })();
    return this.secretsLoading;
  }

  private onMarker(payload: string): void {
    const [token, ...ids] = payload.split(" ");
    const waiter = this.settleWaiters.get(token);
    if (!waiter) {
      // Not one of ours (the tokens are random): ignore it.
      this.live.interrupt();
      return;
    }
    this.settleWaiters.delete(token);
    const ends = waiter.partitions.map((_, i) => parseStreamId(ids[i] ?? "") ?? ZERO);
    this.live.settledTo(waiter.partitions, ends);
    waiter.resolve(ends);
  }

  /** Ends of the partitions kept here (ZERO for any other). */
  async settled(): Promise<Position[]> {
    const groups = this.isCluster() ? this.owned.map((p) => [p]) : [this.owned];
    const ends = await Promise.all(groups.map((g) => this.settleGroup(g)));
    const out: Position[] = new Array(this.partitions).fill(ZERO);
    groups.forEach((g, i) => g.forEach((p, k) => (out[p] = ends[i][k] ?? ZERO)));
    return out;
  }

  private async settleGroup(partitions: number[]): Promise<Position[]> {
    // Unguessable: anyone able to PUBLISH could otherwise answer a settle with made-up ends.
    const token = randomToken(12);
    const arrived = new Promise<Position[]>((resolve, reject) => {
      this.settleWaiters.set(token, { partitions, resolve });
      setTimeout(() => {
        if (this.settleWaiters.delete(token)) reject(new Error("settle marker did not arrive"));
      }, SETTLE_TIMEOUT_MS).unref();
    });
    // A stalled Redis can hold the script call past the timeout: the rejection then comes
    // before anyone awaits `arrived`, and unhandled it would end the process.
    arrived.catch(() => undefined);
    try {
      const keys = partitions.map((p) => this.streamKey(p));
      await this.cmd.fanoutSettle(keys.length, ...keys, this.marker, token);
    } catch (err) {
      this.settleWaiters.delete(token);
      throw err;
    }
    return arrived;
  }

  /** The command connection, for stores beside the broker (cache invalidation, tickets). */
  get commands(): RedisClient {
    return this.cmd;
  }

  isReady(): boolean {
    return this.cmd.status === "ready" && this.sub.status === "ready";
  }

  async subscribe(kind: SubscriptionKind, name: string): Promise<void> {
    if (kind === "channel" && name.startsWith(this.markerPrefix)) throw new Error(`${name} is reserved for the relays`);
    if (kind === "channel") await this.sub.subscribe(name);
    else await this.globs.add(name);
  }

  async unsubscribe(kind: SubscriptionKind, name: string): Promise<void> {
    // The marker subscription is the broker's own, never a client's to release.
    if (kind === "channel" && name.startsWith(this.markerPrefix)) return;
    if (kind === "channel") await this.sub.unsubscribe(name);
    else await this.globs.remove(name);
  }

  async publish(messages: PublishMessage[]): Promise<PublishResult[]> {
    checkPublishable(messages, this.settings.prefix);
    if (this.cmd.status !== "ready") throw unavailable("Redis is unreachable", 2);
    try {
      // Sharded Pub/Sub needs one partition per script call, as Cluster does.
      if (!this.isCluster() && (this.settings.pubsub ?? "classic") === "classic") return await this.runScript(messages, 0);
      // On Cluster a script may only touch one slot: one call per partition, in parallel.
      // Per-channel order is kept (a channel lives in one partition).
      const groups = new Map<number, number[]>();
      messages.forEach((m, i) => {
        const p = partitionOf(m.channel, this.partitions);
        groups.set(p, [...(groups.get(p) ?? []), i]);
      });
      const out: PublishResult[] = new Array(messages.length);
      await Promise.all(
        [...groups].map(async ([p, idx]) => {
          const res = await this.runScript(idx.map((i) => messages[i]), p);
          idx.forEach((i, k) => (out[i] = res[k]));
        }),
      );
      return out;
    } catch (err) {
      if (err instanceof FanoutError) throw err;
      if (/Command timed out/.test((err as Error).message)) {
        // The script may have run (the server stalled after it): only a retry with the same id is safe.
        throw unavailable(`Redis did not answer within ${this.commandTimeoutMs} ms; the publish may have been logged: retry with the same id`, 2);
      }
      throw unavailable(`Redis publish failed: ${(err as Error).message}`, 2);
    }
  }

  private streamKey(partition: number): string {
    return streamKey(this.settings.prefix, partition, partitionTag(this.settings, partition));
  }

  private isCluster(): boolean {
    return (this.cmd as Cluster).isCluster === true;
  }

  /** One script call for `messages` (one request's, or its part in one partition on Cluster), grouped with the turn's other calls in `group`. */
  private async runScript(messages: PublishMessage[], group: number): Promise<PublishResult[]> {
    const { keys, args } = publishScriptArgs(messages, this.settings);
    return publishScriptResults(messages, await this.commit.run(group, keys, args));
  }

  async read(partition: number, after: Position, limit: number): Promise<LogEntry[]> {
    const rows = (await this.cmd.xrange(this.streamKey(partition), `(${streamId(after)}`, "+", "COUNT", limit)) as [string, string[]][];
    const out: LogEntry[] = [];
    for (const [sid, fields] of rows) {
      const pos = parseStreamId(sid);
      if (!pos) continue;
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
      out.push({ channel: f.c, id: `${partition}-${sid}`, partition, pos, type: f.t, metaJson: f.m, dataJson: f.d, ts: Number(f.ts) });
    }
    return out;
  }

  async state(partition: number): Promise<PartitionState> {
    let info: unknown[];
    try {
      info = (await this.cmd.xinfo("STREAM", this.streamKey(partition))) as unknown[];
    } catch (err) {
      if (/no such key/i.test((err as Error).message)) return { last: ZERO, gapBefore: ZERO };
      throw err;
    }
    const get = (k: string): unknown => {
      const i = info.indexOf(k);
      return i >= 0 ? info[i + 1] : undefined;
    };
    const last = parseStreamId(String(get("last-generated-id"))) ?? ZERO;
    const trimmed = Number(get("entries-added")) > Number(get("length"));
    if (!trimmed) return { last, gapBefore: ZERO };
    const first = get("first-entry");
    const firstId = Array.isArray(first) ? parseStreamId(String(first[0])) : undefined;
    // Everything was trimmed (age limit): only a cursor at the very end has no gap.
    return { last, gapBefore: firstId ?? { ms: last.ms, seq: last.seq + 1 } };
  }

  async close(): Promise<void> {
    this.listener = undefined;
    this.sub.disconnect();
    this.cmd.disconnect();
  }
}
