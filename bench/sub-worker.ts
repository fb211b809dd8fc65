/**
 * Subscriber child process: holds a share of the SSE connections and measures what arrives.
 * Driven over IPC by bench/run.ts (messages below); never started by hand.
 */
import { Histogram } from "./histogram.js";
import { SubTally } from "./sub-tally.js";
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

const send = (m: FromSub): void => {
  process.send!(m);
};

let conns: SseConn[] = [];
const tally = new SubTally<SseConn>();

function connectAll(m: Extract<ToSub, { type: "connect" }>): void {
  const t0 = Date.now();
  let next = 0;
  let pending = 0;
  let ready = 0;
  let failed = 0;
  let firstError: string | undefined;
  let finished = false;
  const done = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    send({ type: "connected", ready, failed: failed + (m.conns.length - ready - failed), ms: Date.now() - t0, firstError });
  };
  const timer = setTimeout(() => {
    firstError ??= `timed out after ${m.timeoutMs} ms with ${ready}/${m.conns.length} ready`;
    done();
  }, m.timeoutMs);
  const pump = (): void => {
    while (pending < m.concurrency && next < m.conns.length) {
      const spec = m.conns[next++];
      pending++;
      conns.push(
        new SseConn({
          host: m.host,
          port: m.port,
          path: spec.path,
          key: spec.key,
          readyEvent: m.readyEvent,
          acceptGzip: m.acceptGzip,
          hist: tally.hist,
          onReady: () => {
            pending--;
            ready++;
            if (ready + failed === m.conns.length) done();
            else pump();
          },
          onFail: (_c, why) => {
            pending--;
            failed++;
            firstError ??= why;
            if (ready + failed === m.conns.length) done();
            else pump();
          },
        }),
      );
    }
  };
  if (m.conns.length === 0) done();
  else pump();
}

process.on("message", (m: ToSub) => {
  switch (m.type) {
    case "connect":
      connectAll(m);
      break;
    case "mark":
      tally.mark(conns);
      for (const c of conns) (c.o as { hist: Histogram }).hist = tally.hist;
      break;
    case "progress":
      send(tally.progress(conns));
      break;
    case "report":
      send(tally.report(conns, m.published, (c) => c.o.key));
      break;
    case "close":
      for (const c of conns) c.close();
      conns = [];
      setTimeout(() => process.exit(0), 50);
      break;
  }
});

process.on("disconnect", () => process.exit(0));
