/**
 * Subscriber child process: holds a share of the SSE connections and measures what arrives.
 * Driven over IPC by bench/run.ts (messages below); never started by hand.
 */
import { Histogram } from "./histogram.js";
import { runSubWorker, SubTally } from "./sub-tally.js";
import { SseConn, type ConnStats } from "./sse-client.js";

export interface SubConnSpec {
  path: string;
  key: number;
}

export type ToSub =
  | { type: "connect"; host: string; port: number; conns: SubConnSpec[]; readyEvent: string | null; concurrency: number; timeoutMs: number; acceptGzip?: boolean }
  | { type: "mark" }
  | { type: "progress" }
  | { type: "report"; published: number[] }
  | { type: "close" };

export interface SubReport extends ConnStats {
  type: "report";
  conns: number;
  loss: number;
  extra: number;
  closedDuringRun: number;
  lossyConns: number;
  hist: ReturnType<Histogram["toJSON"]>;
  cpuUs: number;
  wallMs: number;
  /** Response body bytes received since `mark` (as sent: compressed when the stream is). */
  wireBytes: number;
}

export type FromSub =
  | { type: "connected"; ready: number; failed: number; ms: number; firstError?: string }
  | { type: "progress"; unique: number; received: number }
  | SubReport;

const tally = new SubTally<SseConn>();

runSubWorker<SseConn>({
  tally,
  open: (m, spec, onReady, onFail) =>
    new SseConn({
      host: m.host,
      port: m.port,
      path: spec.path,
      key: spec.key,
      readyEvent: m.readyEvent,
      acceptGzip: m.acceptGzip,
      hist: tally.hist,
      onReady: () => onReady(),
      onFail: (_c, why) => onFail(why),
    }),
  keyOf: (c) => c.o.key,
  // An SseConn records into the histogram it was given: the new window's.
  marked: (conns) => {
    for (const c of conns) (c.o as { hist: Histogram }).hist = tally.hist;
  },
});
