/**
 * Health alerts (the seed's monitor): evaluated by each relay on its own figures at every
 * fleet heartbeat and published in its heartbeat, so any relay can show the whole fleet's.
 * Pure: time and figures come in, alerts go out; the only state is when each alert began and
 * the counter samples the spike alerts compare over their window.
 */

export type AlertKind =
  | "channel_inactive"
  | "channel_subscribers"
  | "relay_memory"
  | "redis_unreachable"
  | "redis_memory"
  | "catchups_spike"
  | "resets_spike"
  | "slow_consumer_drops_spike";

export const ALERT_KINDS: readonly AlertKind[] = [
  "channel_inactive",
  "channel_subscribers",
  "relay_memory",
  "redis_unreachable",
  "redis_memory",
  "catchups_spike",
  "resets_spike",
  "slow_consumer_drops_spike",
];

export type Severity = "info" | "warning" | "critical";

export interface Alert {
  kind: AlertKind;
  severity: Severity;
  /** What the alert is about: `channel:<name>` / `pattern:<glob>` for channel alerts, else `relay`. */
  subject: string;
  value: number;
  threshold: number;
  /** Epoch ms when this alert became active (kept across evaluations while it stays active). */
  since: number;
  /** The relay that raised it (filled in by the fleet view). */
  relay?: string;
}

export interface AlertSettings {
  /** Seconds without a message after which a subscribed channel is inactive (0: off). */
  inactiveSeconds: number;
  /** Subscribers on one channel or pattern of this relay beyond which it alerts (0: off). */
  channelSubscribers: number;
  /** Relay resident memory in bytes beyond which it alerts (0: off). */
  memoryBytes: number;
  /** Redis used_memory as a percentage of maxmemory beyond which it alerts (0: off; no maxmemory: off). */
  redisMemoryPercent: number;
  /** Window the spike alerts count over. */
  windowSeconds: number;
  /** Events per window beyond which each spike alerts (0: off). */
  catchUps: number;
  resets: number;
  slowDrops: number;
}

/** One subscription (exact channel or pattern) as the relay holds it. */
export interface SubscriptionSample {
  name: string;
  kind: "channel" | "pattern";
  subscribers: number;
  /** Epoch ms of the last message routed to it, or when the relay first saw it subscribed. */
  lastActiveAt: number;
}

export interface AlertInput {
  subscriptions: Iterable<SubscriptionSample>;
  rssBytes: number;
  /** Undefined on the embedded broker. */
  redis?: { reachable: boolean; usedMemoryBytes?: number; maxMemoryBytes?: number };
  /** Monotonic counters since start. */
  counters: { catchUps: number; resets: number; slowDrops: number };
}

/** Channel alerts kept per kind: a relay with 100 000 idle channels reports the first ones and a count. */
export const MAX_SUBJECTS_PER_KIND = 50;

export interface Evaluation {
  alerts: Alert[];
  /** Alerts left out per kind beyond MAX_SUBJECTS_PER_KIND. */
  omitted: Partial<Record<AlertKind, number>>;
}

export class AlertEvaluator {
  private active = new Map<string, number>();
  private samples: Array<{ at: number; catchUps: number; resets: number; slowDrops: number }> = [];

  constructor(private readonly settings: AlertSettings) {}

  evaluate(input: AlertInput, now: number): Evaluation {
    const s = this.settings;
    const raised: Array<Omit<Alert, "since">> = [];
    const omitted: Partial<Record<AlertKind, number>> = {};
    const channelAlert = (a: Omit<Alert, "since">) => {
      if (raised.filter((r) => r.kind === a.kind).length >= MAX_SUBJECTS_PER_KIND) omitted[a.kind] = (omitted[a.kind] ?? 0) + 1;
      else raised.push(a);
    };
    for (const sub of input.subscriptions) {
      const subject = `${sub.kind}:${sub.name}`;
      if (s.channelSubscribers > 0 && sub.subscribers > s.channelSubscribers) {
        channelAlert({ kind: "channel_subscribers", severity: "warning", subject, value: sub.subscribers, threshold: s.channelSubscribers });
      }
      const idle = Math.floor((now - sub.lastActiveAt) / 1000);
      if (s.inactiveSeconds > 0 && idle >= s.inactiveSeconds) {
        channelAlert({ kind: "channel_inactive", severity: "info", subject, value: idle, threshold: s.inactiveSeconds });
      }
    }
    if (s.memoryBytes > 0 && input.rssBytes > s.memoryBytes) {
      raised.push({ kind: "relay_memory", severity: "warning", subject: "relay", value: input.rssBytes, threshold: s.memoryBytes });
    }
    if (input.redis && !input.redis.reachable) {
      raised.push({ kind: "redis_unreachable", severity: "critical", subject: "redis", value: 1, threshold: 0 });
    }
    const { usedMemoryBytes: used, maxMemoryBytes: max } = input.redis ?? {};
    if (s.redisMemoryPercent > 0 && used !== undefined && max) {
      const pct = Math.round((used / max) * 1000) / 10;
      if (pct > s.redisMemoryPercent) raised.push({ kind: "redis_memory", severity: "warning", subject: "redis", value: pct, threshold: s.redisMemoryPercent });
    }
    // Spikes: events in the window, from the oldest sample still inside it (or the first ever).
    this.samples.push({ at: now, ...input.counters });
    const windowMs = s.windowSeconds * 1000;
    while (this.samples.length > 1 && this.samples[1].at <= now - windowMs) this.samples.shift();
    const base = this.samples[0];
    const spikes: Array<[AlertKind, number, number]> = [
      ["catchups_spike", input.counters.catchUps - base.catchUps, s.catchUps],
      ["resets_spike", input.counters.resets - base.resets, s.resets],
      ["slow_consumer_drops_spike", input.counters.slowDrops - base.slowDrops, s.slowDrops],
    ];
    for (const [kind, value, threshold] of spikes) {
      if (threshold > 0 && value > threshold) raised.push({ kind, severity: "warning", subject: "relay", value, threshold });
    }

    const next = new Map<string, number>();
    const alerts = raised.map((a) => {
      const key = `${a.kind}\u0000${a.subject}`;
      const since = this.active.get(key) ?? now;
      next.set(key, since);
      return { ...a, since };
    });
    this.active = next;
    return { alerts, omitted };
  }
}
