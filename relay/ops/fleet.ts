import { hostname } from "node:os";
import type { Counter, Histogram } from "prom-client";
import type { RelayContext } from "../relay-context.js";
import { ALERT_KINDS, AlertEvaluator, type Alert, type AlertSettings } from "./alerts.js";
import type { FleetStore } from "./fleet-store.js";
import { bucketDelta, quantile, type Buckets } from "./latency-percentiles.js";
import { byActivity, fleetTopChannels, fleetTotals, type FleetTotals, type RelayReport, type RelayState, type TopChannel } from "./relay-report.js";

export interface FleetSettings {
  relayId: string;
  heartbeatMs: number;
  ttlMs: number;
  /** Busiest subscriptions each relay reports (and the fleet view merges). */
  topChannels: number;
  alerts: AlertSettings;
}

export interface FleetView {
  /** The relay that answered. */
  self: string;
  generatedAt: number;
  heartbeatMs: number;
  ttlMs: number;
  /** True when the store could not be read: only the answering relay is shown. */
  partial: boolean;
  relays: RelayReport[];
  totals: FleetTotals;
  topChannels: TopChannel[];
  alerts: Alert[];
}

const sum = async (m: Counter<string>, match?: (labels: Record<string, unknown>) => boolean) =>
  (await m.get()).values.filter((v) => !match || match(v.labels)).reduce((a, v) => a + v.value, 0);

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * This relay's place in the fleet. Every `heartbeatMs` it samples the relay (rates over the
 * interval, latency percentiles from the histogram's buckets, the busiest subscriptions),
 * evaluates its health alerts and writes the report to the fleet store with a TTL of
 * `ttlMs`; a relay that dies stops writing and leaves the fleet when its report expires. A
 * draining relay writes `draining` at once and keeps that until it stops.
 */
export class Fleet {
  private timer?: NodeJS.Timeout;
  private beat: Promise<void> = Promise.resolve();
  private everReady = false;
  private latest?: RelayReport;
  private prevBuckets?: Buckets;
  private prevMessages = new Map<string, number>();
  private prevAt = 0;
  private readonly evaluator: AlertEvaluator;
  /** Last heartbeat write failed (Redis down): the fleet view then shows this relay alone. */
  storeError = false;

  constructor(
    private readonly rc: RelayContext,
    private readonly store: FleetStore,
    readonly settings: FleetSettings,
  ) {
    this.evaluator = new AlertEvaluator(settings.alerts);
  }

  get id(): string {
    return this.settings.relayId;
  }

  start(): Promise<void> {
    this.timer = setInterval(() => void this.heartbeat(), this.settings.heartbeatMs);
    this.timer.unref();
    return this.heartbeat();
  }

  /** Samples, evaluates and writes now (after any beat under way: beats never overlap). */
  heartbeat(): Promise<void> {
    this.beat = this.beat.then(() => this.runBeat());
    return this.beat;
  }

  /** Stops beating; the last report stays until its TTL runs out (a drained relay shows `draining` until then). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private state(): RelayState {
    if (this.rc.draining) return "draining";
    if (!this.everReady && this.rc.hub.initialized && this.rc.broker.isReady()) this.everReady = true;
    return this.everReady ? "ready" : "starting";
  }

  private async runBeat(): Promise<void> {
    try {
      const report = await this.sample(Date.now());
      this.latest = report;
      // A Redis that accepts the connection but never answers must not stall every later beat.
      await within(this.store.put(report, this.settings.ttlMs), this.settings.heartbeatMs);
      this.storeError = false;
    } catch {
      // Redis down: the alert says so; the next beat tries again.
      this.storeError = true;
    }
  }

  private async sample(now: number): Promise<RelayReport> {
    const { rc } = this;
    const m = rc.metrics;
    const dt = this.prevAt ? Math.max(1, now - this.prevAt) / 1000 : 0;
    this.prevAt = now;

    const subs = [...rc.hub.activity()];
    const nextMessages = new Map<string, number>();
    const channels: TopChannel[] = [];
    let maxSubscribers = 0;
    for (const s of subs) {
      const key = `${s.kind}\u0000${s.name}`;
      nextMessages.set(key, s.messages);
      const before = this.prevMessages.get(key);
      const perSecond = dt && before !== undefined ? Math.max(0, s.messages - before) / dt : 0;
      channels.push({ kind: s.kind, name: s.name, subscribers: s.subscribers, perSecond: Math.round(perSecond * 100) / 100 });
      maxSubscribers = Math.max(maxSubscribers, s.subscribers);
    }
    this.prevMessages = nextMessages;
    channels.sort(byActivity);

    const hist = await (m.latency as Histogram<string>).get();
    const buckets: Buckets = hist.values
      .filter((v) => v.metricName?.endsWith("_bucket"))
      .map((v) => ({ le: v.labels.le === "+Inf" ? Infinity : Number(v.labels.le), count: v.value }));
    const window = bucketDelta(buckets, this.prevBuckets);
    this.prevBuckets = buckets;
    const count = window[window.length - 1]?.count ?? 0;
    const q = (x: number) => Math.round((quantile(x, window) ?? 0) * 1e6) / 1e6;

    const isRedis = Boolean(rc.config.redisUrl);
    const brokerReady = rc.broker.isReady();
    const redis = isRedis && brokerReady ? await within(this.store.backendMemory(), this.settings.heartbeatMs).catch(() => undefined) : undefined;
    const mem = process.memoryUsage();
    const drops = { total: await sum(m.slowDrops), hard: 0, soft: 0, budget: 0 };
    for (const reason of ["hard", "soft", "budget"] as const) drops[reason] = await sum(m.slowDropsByReason, (l) => l.reason === reason);
    const resets = await sum(m.resets);
    const catchUps = await sum(m.catchUps);

    const evaluation = this.evaluator.evaluate(
      {
        subscriptions: subs,
        rssBytes: mem.rss,
        redis: isRedis ? { reachable: brokerReady, ...redis } : undefined,
        counters: { catchUps, resets, slowDrops: drops.total },
      },
      now,
    );
    const alerts = evaluation.alerts.map((a) => ({ ...a, relay: this.id }));

    m.maxChannelSubscribers.set(maxSubscribers);
    for (const kind of ALERT_KINDS) m.alertsActive.set({ kind }, 0);
    for (const a of alerts) m.alertsActive.inc({ kind: a.kind });
    for (const [kind, n] of Object.entries(evaluation.omitted)) m.alertsActive.inc({ kind }, n);
    if (redis) {
      m.redisUsedMemory.set(redis.usedMemoryBytes);
      m.redisMaxMemory.set(redis.maxMemoryBytes);
    }

    return {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      state: this.state(),
      startedAt: rc.startedAt,
      updatedAt: now,
      broker: isRedis ? "redis" : "memory",
      brokerReady,
      redis,
      memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed },
      connections: rc.connections.size,
      subscriptions: { channels: subs.filter((s) => s.kind === "channel").length, patterns: subs.filter((s) => s.kind === "pattern").length },
      messages: { in: await sum(m.messagesIn), out: await sum(m.messagesOut), published: await sum(m.published) },
      rates: (({ inPerSecond, outPerSecond }) => ({ inPerSecond, outPerSecond }))(rc.hub.rates.snapshot()),
      latency: count > 0 ? { p50: q(0.5), p90: q(0.9), p99: q(0.99), count } : null,
      slowConsumerDrops: drops,
      replayed: await sum(m.replayed),
      resets,
      catchUps,
      queuedBytes: rc.queues.bytes,
      topChannels: channels.slice(0, this.settings.topChannels),
      alerts,
      alertsOmitted: evaluation.omitted,
    };
  }

  private listing?: { at: number; reports: Promise<RelayReport[]> };

  /**
   * The store's listing, shared by the requests of one short period: the view is open to
   * anonymous callers (counts only), and polling it must not cost Redis a read per request.
   */
  private listed(): Promise<RelayReport[]> {
    const now = Date.now();
    if (!this.listing || now - this.listing.at >= Math.min(1000, this.settings.heartbeatMs)) {
      const reports = within(this.store.list(), this.settings.heartbeatMs);
      this.listing = { at: now, reports };
      // A failed read is not kept: the next request tries again.
      reports.catch(() => {
        if (this.listing?.reports === reports) this.listing = undefined;
      });
    }
    return this.listing.reports;
  }

  /**
   * Every live relay's latest report, this one's fresh. When the store cannot be read
   * (Redis down), this relay alone, marked `partial`.
   */
  async view(): Promise<FleetView> {
    await this.beat;
    const self = this.latest ?? (await this.sample(Date.now()));
    // State and connections move between beats; the answering relay's own are current.
    const own: RelayReport = { ...self, state: this.state(), connections: this.rc.connections.size, brokerReady: this.rc.broker.isReady() };
    let others: RelayReport[] = [];
    let partial = false;
    try {
      others = (await this.listed()).filter((r) => r.id !== this.id);
    } catch {
      partial = true;
    }
    const relays = [own, ...others].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return {
      self: this.id,
      generatedAt: Date.now(),
      heartbeatMs: this.settings.heartbeatMs,
      ttlMs: this.settings.ttlMs,
      partial,
      relays,
      totals: fleetTotals(relays),
      topChannels: fleetTopChannels(relays, this.settings.topChannels),
      alerts: relays.flatMap((r) => r.alerts),
    };
  }
}
