import { randomUUID } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { parseEnvelope, plainDataJson } from "../../protocol/envelope.js";
import { FanoutError, unavailable } from "../../protocol/errors.js";
import { parseMessageId, parseStreamId, streamId, type Position, ZERO } from "../../protocol/position.js";
import { PUBLISH_SCRIPT, publishScriptArgs, publishScriptResults, type LogSettings } from "../../protocol/publish-script.js";
import type { PublishMessage, PublishResult } from "../../protocol/publish-request.js";
import { partitionOf, streamKey } from "../../protocol/partition.js";
import type { Broker, BrokerListener, Delivery, LogEntry, MessageLog, PartitionState, SubscriptionKind } from "../broker/broker.js";
import { connect, connectSubscriber, type RedisClient } from "./redis-connection.js";

const PLAUSIBLE_SKEW_MS = 10 * 60_000;

type Scripted = RedisClient & {
  fanoutPublish(numKeys: number, ...args: string[]): Promise<unknown>;
  fanoutSettle(numKeys: number, ...args: string[]): Promise<unknown>;
};

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
 */
export class RedisBroker implements Broker, MessageLog {
  readonly partitions: number;
  private readonly cmd: Scripted;
  private readonly sub: Redis;
  private listener?: BrokerListener;
  private subReadyOnce = false;
  private plainSeq = 0;
  private settleSeq = 0;
  private readonly settleWaiters = new Map<string, (ends: Position[]) => void>();
  private readonly relayId = randomUUID().slice(0, 8);
  /** A channel of this relay's own: subscribing to it after a reconnect is a barrier behind ioredis's resubscribes. */
  private readonly marker: string;
  /** `<prefix>:relay:` — reserved for relays' marker channels. */
  private readonly markerPrefix: string;

  constructor(url: string, private readonly settings: LogSettings) {
    this.partitions = settings.partitions;
    this.markerPrefix = `${settings.prefix}:relay:`;
    this.marker = `${this.markerPrefix}${this.relayId}`;
    const retryStrategy = (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000);
    // Commands fail fast while Redis is down (publish answers 503) instead of queueing.
    this.cmd = connect(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy, lazyConnect: true }) as Scripted;
    // On Cluster the subscriber is a plain connection to one node (classic Pub/Sub reaches
    // every node), moving to another known node when that one is unreachable.
    this.sub = connectSubscriber(url, { enableOfflineQueue: true, maxRetriesPerRequest: null, retryStrategy, lazyConnect: true }, () =>
      this.isCluster() ? (this.cmd as Cluster).nodes("all").map((n) => ({ host: n.options.host ?? "127.0.0.1", port: n.options.port ?? 6379 })) : [],
    );
    this.cmd.defineCommand("fanoutPublish", { lua: PUBLISH_SCRIPT });
    this.cmd.defineCommand("fanoutSettle", { lua: SETTLE_SCRIPT });
    for (const c of [this.cmd, this.sub]) c.on("error", () => undefined /* surfaced through status and 503s */);
  }

  async start(listener: BrokerListener): Promise<void> {
    this.listener = listener;
    const sub = this.sub;
    sub.on("message", (channel: string, payload: string) => {
      if (channel === this.marker) this.onMarker(payload);
      else listener.deliver(this.toDelivery(channel, undefined, payload));
    });
    sub.on("pmessage", (pattern: string, channel: string, payload: string) => {
      // Relays' marker channels are internal: a pattern like `*` must not deliver them.
      if (!channel.startsWith(this.markerPrefix)) listener.deliver(this.toDelivery(channel, pattern, payload));
    });
    sub.on("close", () => listener.down());
    sub.on("ready", () => {
      if (!this.subReadyOnce) {
        this.subReadyOnce = true;
        return;
      }
      // Replies come in order: once the marker is confirmed, every resubscribe before it is live.
      sub.subscribe(this.marker).then(
        () => listener.recovered(),
        () => undefined /* dropped again; the next ready retries */,
      );
    });
    // Start even when Redis is down: the relay serves /healthz and reports 503 until it is up.
    await Promise.all([this.cmd.connect().catch(() => undefined), sub.connect().catch(() => undefined)]);
    if (this.sub.status === "ready") await sub.subscribe(this.marker).catch(() => undefined);
  }

  private onMarker(payload: string): void {
    const [token, ...ids] = payload.split(" ");
    const resolve = this.settleWaiters.get(token);
    this.settleWaiters.delete(token);
    resolve?.(ids.map((id) => parseStreamId(id) ?? ZERO));
  }

  async settled(): Promise<Position[]> {
    const all = Array.from({ length: this.partitions }, (_, p) => p);
    const groups = this.isCluster() ? all.map((p) => [p]) : [all];
    const ends = await Promise.all(groups.map((g) => this.settleGroup(g)));
    const out: Position[] = new Array(this.partitions).fill(ZERO);
    groups.forEach((g, i) => g.forEach((p, k) => (out[p] = ends[i][k] ?? ZERO)));
    return out;
  }

  private async settleGroup(partitions: number[]): Promise<Position[]> {
    const token = `${this.relayId}.${this.settleSeq++}`;
    const arrived = new Promise<Position[]>((resolve, reject) => {
      this.settleWaiters.set(token, resolve);
      setTimeout(() => {
        if (this.settleWaiters.delete(token)) reject(new Error("settle marker did not arrive"));
      }, SETTLE_TIMEOUT_MS).unref();
    });
    try {
      const keys = partitions.map((p) => streamKey(this.settings.prefix, p));
      await this.cmd.fanoutSettle(keys.length, ...keys, this.marker, token);
    } catch (err) {
      this.settleWaiters.delete(token);
      throw err;
    }
    return arrived;
  }

  private toDelivery(channel: string, pattern: string | undefined, payload: string): Delivery {
    const env = parseEnvelope(payload, channel);
    const mid = env && parseMessageId(env.id);
    // A live log message is fresh. An "envelope" whose position is far from now came from
    // another program imitating one: taking its position would move the relay cursor.
    if (env && mid && mid.partition < this.partitions && Math.abs(Date.now() - mid.pos.ms) < PLAUSIBLE_SKEW_MS) {
      return { channel, pattern, id: env.id, partition: mid.partition, pos: mid.pos, type: env.type, dataJson: env.dataJson, ts: env.ts };
    }
    return { channel, pattern, id: `x-${this.relayId}-${(this.plainSeq++).toString(36)}`, dataJson: plainDataJson(payload), ts: Date.now() };
  }

  /** The command connection, for stores beside the broker (cache invalidation, tickets). */
  get commands(): RedisClient {
    return this.cmd;
  }

  isReady(): boolean {
    return this.cmd.status === "ready" && this.sub.status === "ready";
  }

  async subscribe(kind: SubscriptionKind, name: string): Promise<void> {
    if (kind === "channel") await this.sub.subscribe(name);
    else await this.sub.psubscribe(name);
  }

  async unsubscribe(kind: SubscriptionKind, name: string): Promise<void> {
    if (kind === "channel") await this.sub.unsubscribe(name);
    else await this.sub.punsubscribe(name);
  }

  async publish(messages: PublishMessage[]): Promise<PublishResult[]> {
    if (this.cmd.status !== "ready") throw unavailable("Redis is unreachable", 2);
    try {
      if (!this.isCluster()) return await this.runScript(messages);
      // On Cluster a script may only touch one slot: one call per partition, in parallel.
      // Per-channel order is kept (a channel lives in one partition).
      const groups = new Map<number, number[]>();
      messages.forEach((m, i) => {
        const p = partitionOf(m.channel, this.partitions);
        groups.set(p, [...(groups.get(p) ?? []), i]);
      });
      const out: PublishResult[] = new Array(messages.length);
      await Promise.all(
        [...groups.values()].map(async (idx) => {
          const res = await this.runScript(idx.map((i) => messages[i]));
          idx.forEach((i, k) => (out[i] = res[k]));
        }),
      );
      return out;
    } catch (err) {
      if (err instanceof FanoutError) throw err;
      throw unavailable(`Redis publish failed: ${(err as Error).message}`, 2);
    }
  }

  private isCluster(): boolean {
    return (this.cmd as Cluster).isCluster === true;
  }

  private async runScript(messages: PublishMessage[]): Promise<PublishResult[]> {
    const { keys, args } = publishScriptArgs(messages, this.settings);
    const reply = await this.cmd.fanoutPublish(keys.length, ...keys, ...args);
    return publishScriptResults(messages, reply);
  }

  async read(partition: number, after: Position, limit: number): Promise<LogEntry[]> {
    const rows = (await this.cmd.xrange(streamKey(this.settings.prefix, partition), `(${streamId(after)}`, "+", "COUNT", limit)) as [string, string[]][];
    const out: LogEntry[] = [];
    for (const [sid, fields] of rows) {
      const pos = parseStreamId(sid);
      if (!pos) continue;
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
      out.push({ channel: f.c, id: `${partition}-${sid}`, partition, pos, type: f.t, dataJson: f.d, ts: Number(f.ts) });
    }
    return out;
  }

  async state(partition: number): Promise<PartitionState> {
    let info: unknown[];
    try {
      info = (await this.cmd.xinfo("STREAM", streamKey(this.settings.prefix, partition))) as unknown[];
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
