import { Histogram } from "./histogram.js";
import type { ConnStats } from "./sse-client.js";
import type { FromSub, SubConnSpec, SubReport, ToSub } from "./sub-worker.js";

/** What a subscriber worker's connection counts (an SSE stream or a Socket.IO client alike). */
export interface Tallied extends ConnStats {
  ready: boolean;
  closed: boolean;
  wireBytes: number;
}

/** The counters every kind of benchmark subscriber keeps, the fields SubTally and countSeq read. */
export class SubCounters implements Tallied, SeqState {
  ready = false;
  failed = false;
  closed = false;
  received = 0;
  unique = 0;
  dup = 0;
  ooo = 0;
  gaps = 0;
  wrongKey = 0;
  malformed = 0;
  maxSeq = 0;
  seen = new Uint8Array(64);
  /** Bytes as received on the wire (compressed or framed as the transport sends them). */
  wireBytes = 0;
}

/**
 * A subscriber worker's measurement window: `mark` starts it (latency histogram, CPU, wall
 * clock, bytes per connection), `report` sums every ready connection against what was
 * published per channel. One definition for every kind of subscriber, so their figures are
 * comparable by construction.
 */
export class SubTally<C extends Tallied> {
  hist = new Histogram();
  private markCpu = process.cpuUsage();
  private markWall = Date.now();
  private readonly markBytes = new Map<C, number>();

  mark(conns: readonly C[]): void {
    this.hist = new Histogram();
    this.markCpu = process.cpuUsage();
    this.markWall = Date.now();
    for (const c of conns) this.markBytes.set(c, c.wireBytes);
  }

  progress(conns: readonly C[]): Extract<FromSub, { type: "progress" }> {
    let unique = 0;
    let received = 0;
    for (const c of conns) {
      unique += c.unique;
      received += c.received;
    }
    return { type: "progress", unique, received };
  }

  /** `keyOf(c)`: the channel index connection `c` subscribed to (its slot in `published`). */
  report(conns: readonly C[], published: readonly number[], keyOf: (c: C) => number): SubReport {
    const cpu = process.cpuUsage(this.markCpu);
    const r: SubReport = {
      type: "report",
      conns: conns.length,
      received: 0,
      unique: 0,
      dup: 0,
      ooo: 0,
      gaps: 0,
      wrongKey: 0,
      malformed: 0,
      loss: 0,
      extra: 0,
      closedDuringRun: 0,
      lossyConns: 0,
      hist: this.hist.toJSON(),
      cpuUs: cpu.user + cpu.system,
      wallMs: Date.now() - this.markWall,
      wireBytes: 0,
    };
    for (const c of conns) {
      if (!c.ready) continue;
      r.received += c.received;
      r.unique += c.unique;
      r.dup += c.dup;
      r.ooo += c.ooo;
      r.gaps += c.gaps;
      r.wrongKey += c.wrongKey;
      r.malformed += c.malformed;
      r.wireBytes += c.wireBytes - (this.markBytes.get(c) ?? 0);
      if (c.closed) r.closedDuringRun++;
      const expected = published[keyOf(c)] ?? 0;
      if (c.unique < expected) {
        r.loss += expected - c.unique;
        r.lossyConns++;
      } else r.extra += c.unique - expected;
    }
    return r;
  }
}

/** A connection's sequence bookkeeping: which message numbers arrived, and the highest. */
export interface SeqState {
  seen: Uint8Array;
  maxSeq: number;
  unique: number;
  dup: number;
  ooo: number;
  gaps: number;
}

/**
 * Counts message number `q` (per channel, from 1) on a connection: new and in order, after a
 * gap, a duplicate, or late (out of order). One bit per number, grown by doubling.
 */
export function countSeq(s: SeqState, q: number): void {
  if (q >= s.seen.length * 8) {
    let len = s.seen.length * 2;
    while (q >= len * 8) len *= 2;
    const nb = new Uint8Array(len);
    nb.set(s.seen);
    s.seen = nb;
  }
  const byte = q >> 3;
  const bit = 1 << (q & 7);
  if (q > s.maxSeq) {
    if (q !== s.maxSeq + 1) s.gaps++;
    s.maxSeq = q;
    s.seen[byte] |= bit;
    s.unique++;
  } else if (s.seen[byte] & bit) {
    s.dup++;
  } else {
    s.ooo++;
    s.seen[byte] |= bit;
    s.unique++;
  }
}

type Connect = Extract<ToSub, { type: "connect" }>;

/** A subscriber worker's own part: how to open one connection, and which channel it follows. */
export interface SubWorkerKind<C extends Tallied & { close(): void }> {
  tally: SubTally<C>;
  /** Opens `spec`'s connection; exactly one of `onReady` / `onFail` is called, once. */
  open(m: Connect, spec: SubConnSpec, onReady: () => void, onFail: (why: string) => void): C;
  /** The channel index `c` follows (its slot in `published`). */
  keyOf(c: C): number;
  /** After `mark` (a connection that records into the histogram it was given gets the new one). */
  marked?(conns: readonly C[]): void;
}

/**
 * The IPC side of a subscriber worker (messages in bench/sub-worker.ts), the same for every
 * kind of subscriber: the connect ramp (at most `concurrency` opening at once, a deadline of
 * `timeoutMs`), then mark, progress, report and close.
 */
export function runSubWorker<C extends Tallied & { close(): void }>(kind: SubWorkerKind<C>): void {
  const send = (m: FromSub): void => {
    process.send!(m);
  };
  let conns: C[] = [];

  const connectAll = (m: Connect): void => {
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
    const settled = (): void => {
      pending--;
      if (ready + failed === m.conns.length) done();
      else pump();
    };
    const pump = (): void => {
      while (pending < m.concurrency && next < m.conns.length) {
        const spec = m.conns[next++];
        pending++;
        conns.push(
          kind.open(
            m,
            spec,
            () => {
              ready++;
              settled();
            },
            (why) => {
              failed++;
              firstError ??= why;
              settled();
            },
          ),
        );
      }
    };
    if (m.conns.length === 0) done();
    else pump();
  };

  process.on("message", (m: ToSub) => {
    switch (m.type) {
      case "connect":
        connectAll(m);
        break;
      case "mark":
        kind.tally.mark(conns);
        kind.marked?.(conns);
        break;
      case "progress":
        send(kind.tally.progress(conns));
        break;
      case "report":
        send(kind.tally.report(conns, m.published, kind.keyOf));
        break;
      case "close":
        for (const c of conns) c.close();
        conns = [];
        setTimeout(() => process.exit(0), 50);
        break;
    }
  });
  process.on("disconnect", () => process.exit(0));
}
