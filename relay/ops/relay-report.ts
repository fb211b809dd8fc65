import type { Alert, AlertKind } from "./alerts.js";

export type RelayState = "starting" | "ready" | "draining";

/** A subscription among a relay's busiest, with its subscribers on that relay. */
export interface TopChannel {
  kind: "channel" | "pattern";
  name: string;
  subscribers: number;
  /** Messages routed by it per second over the last heartbeat interval. */
  perSecond: number;
}

/**
 * What one relay reports at each heartbeat: the figures `/v1/stats?scope=fleet`, `/v1/alerts`
 * and the dashboard show per relay. Monotonic counters are since the relay started.
 */
export interface RelayReport {
  id: string;
  /** Where it runs (operators only): the host name (container or pod name) and process id. */
  host: string;
  pid: number;
  state: RelayState;
  startedAt: number;
  updatedAt: number;
  broker: "redis" | "memory";
  brokerReady: boolean;
  /** Shared Redis memory (INFO memory; on a Cluster one node's), when there is a Redis. */
  redis?: { usedMemoryBytes: number; maxMemoryBytes: number };
  memory: { rssBytes: number; heapUsedBytes: number };
  connections: number;
  subscriptions: { channels: number; patterns: number };
  messages: { in: number; out: number; published: number };
  rates: { inPerSecond: number; outPerSecond: number };
  /** Publish→write latency in seconds over the last heartbeat interval (from the histogram's buckets); null: no message. */
  latency: { p50: number; p90: number; p99: number; count: number } | null;
  slowConsumerDrops: { total: number; hard: number; soft: number; budget: number };
  replayed: number;
  resets: number;
  catchUps: number;
  queuedBytes: number;
  topChannels: TopChannel[];
  alerts: Alert[];
  /** Alerts left out per kind (a relay lists at most a few dozen channel alerts of a kind). */
  alertsOmitted: Partial<Record<AlertKind, number>>;
}

export interface FleetTotals {
  relays: number;
  states: Record<RelayState, number>;
  connections: number;
  subscriptions: { channels: number; patterns: number };
  messages: { in: number; out: number; published: number };
  rates: { inPerSecond: number; outPerSecond: number };
  slowConsumerDrops: { total: number; hard: number; soft: number; budget: number };
  replayed: number;
  resets: number;
  catchUps: number;
  queuedBytes: number;
}

export function fleetTotals(relays: RelayReport[]): FleetTotals {
  const t: FleetTotals = {
    relays: relays.length,
    states: { starting: 0, ready: 0, draining: 0 },
    connections: 0,
    subscriptions: { channels: 0, patterns: 0 },
    messages: { in: 0, out: 0, published: 0 },
    rates: { inPerSecond: 0, outPerSecond: 0 },
    slowConsumerDrops: { total: 0, hard: 0, soft: 0, budget: 0 },
    replayed: 0,
    resets: 0,
    catchUps: 0,
    queuedBytes: 0,
  };
  for (const r of relays) {
    t.states[r.state] = (t.states[r.state] ?? 0) + 1;
    t.connections += r.connections;
    t.subscriptions.channels += r.subscriptions.channels;
    t.subscriptions.patterns += r.subscriptions.patterns;
    for (const k of ["in", "out", "published"] as const) t.messages[k] += r.messages[k];
    t.rates.inPerSecond += r.rates.inPerSecond;
    t.rates.outPerSecond += r.rates.outPerSecond;
    for (const k of ["total", "hard", "soft", "budget"] as const) t.slowConsumerDrops[k] += r.slowConsumerDrops[k];
    t.replayed += r.replayed;
    t.resets += r.resets;
    t.catchUps += r.catchUps;
    t.queuedBytes += r.queuedBytes;
  }
  return t;
}

/** The busiest subscriptions across relays: subscribers summed per name, rates too (each relay routes its own copy). */
export function fleetTopChannels(relays: RelayReport[], n: number): TopChannel[] {
  const merged = new Map<string, TopChannel>();
  for (const r of relays) {
    for (const c of r.topChannels) {
      const key = `${c.kind}\u0000${c.name}`;
      const m = merged.get(key);
      if (m) {
        m.subscribers += c.subscribers;
        m.perSecond += c.perSecond;
      } else merged.set(key, { ...c });
    }
  }
  return [...merged.values()].sort(byActivity).slice(0, n);
}

export function byActivity(a: TopChannel, b: TopChannel): number {
  return b.perSecond - a.perSecond || b.subscribers - a.subscribers || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * A report for callers without operator access: counts only. Relay ids (host names, pod
 * names) and channel names stay with operators; relays are told apart by position.
 */
export function redactReport(r: RelayReport): Omit<RelayReport, "id" | "host" | "pid" | "topChannels" | "alerts"> & { alerts: Array<Omit<Alert, "subject" | "relay">> } {
  const { id: _id, host: _h, pid: _p, topChannels: _top, alerts, ...rest } = r;
  return { ...rest, alerts: alerts.map(redactAlert) };
}

export function redactAlert(a: Alert): Omit<Alert, "subject" | "relay"> {
  const { subject: _s, relay: _r, ...rest } = a;
  return rest;
}
