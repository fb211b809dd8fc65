/** The benchmark scenarios of issue 6. Durations are short so a full run takes minutes. */
export type ScenarioId = "a" | "b" | "c" | "d" | "e" | "p" | "z";

export interface Scenario {
  id: ScenarioId;
  title: string;
  subs: number;
  channels: number;
  /** Messages per second over all channels; 0 = as fast as the server answers (closed loop). */
  rate: number;
  durationMs: number;
  /** Subscribers use a distinct glob pattern each (exact channels on servers without patterns). */
  patterns?: boolean;
  /** No publishing: measure memory per idle connection. */
  idle?: boolean;
  pubConns: number;
  /** Requests in flight per publisher connection (1 = no pipelining). */
  window: number;
  subProcs: number;
  /** Run once per variant (payload, compression), each a row of its own. */
  variants?: Variant[];
}

export interface Variant {
  label: string;
  /** Message data padded with JSON records to about this size. */
  payloadBytes: number;
  /** Relay started with FANOUT_COMPRESSION=gzip and subscribers sending Accept-Encoding: gzip. */
  gzip: boolean;
}

export function scenarios(quick: boolean): Scenario[] {
  const d = quick ? 3000 : 10000;
  const big = quick ? 2000 : 10000;
  return [
    { id: "a", title: "1,000 subs, 1 channel, 200 msg/s", subs: 1000, channels: 1, rate: 200, durationMs: d, pubConns: 1, window: 1, subProcs: 2 },
    { id: "b", title: `${big.toLocaleString("en")} subs, 100 channels, 1,000 msg/s`, subs: big, channels: 100, rate: 1000, durationMs: d, pubConns: 10, window: 1, subProcs: 2 },
    { id: "c", title: "100 subs, 1 channel, publish as fast as possible", subs: 100, channels: 1, rate: 0, durationMs: d, pubConns: 1, window: 1, subProcs: 1 },
    { id: "d", title: `${big.toLocaleString("en")} idle connections (100 channels): RSS/conn`, subs: big, channels: 100, rate: 0, durationMs: 3000, idle: true, pubConns: 1, window: 1, subProcs: 2 },
    { id: "e", title: "1,000 subs, distinct patterns, 1,000 msg/s over 1,000 channels", subs: 1000, channels: 1000, rate: 1000, durationMs: d, patterns: true, pubConns: 10, window: 1, subProcs: 1 },
    // The publish path alone: what a publish costs the server when nobody listens.
    {
      id: "z",
      title: "compression: 200 subs, 1 channel, 50 msg/s of ~100 B and ~10 KB JSON, plain vs gzip",
      subs: 200,
      channels: 1,
      rate: 50,
      durationMs: d,
      pubConns: 1,
      window: 1,
      subProcs: 1,
      variants: [
        { label: "100B", payloadBytes: 100, gzip: false },
        { label: "100B gzip", payloadBytes: 100, gzip: true },
        { label: "10KB", payloadBytes: 10240, gzip: false },
        { label: "10KB gzip", payloadBytes: 10240, gzip: true },
      ],
    },
    { id: "p", title: "publish only: no subscribers, 100 channels, 500 msg/s", subs: 0, channels: 100, rate: 500, durationMs: d, pubConns: 4, window: 1, subProcs: 1 },
  ];
}

export function channelName(s: Scenario, i: number): string {
  return s.patterns ? `${s.id}${i}_m` : `${s.id}${i}`;
}

/** The glob pattern subscriber of channel i uses in a pattern scenario (matches only that channel). */
export function patternName(s: Scenario, i: number): string {
  return `${s.id}${i}_*`;
}
