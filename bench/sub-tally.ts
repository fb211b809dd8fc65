import { Histogram } from "./histogram.js";
import type { ConnStats } from "./sse-client.js";
import type { FromSub, SubReport } from "./sub-worker.js";

/** What a subscriber worker's connection counts (an SSE stream or a Socket.IO client alike). */
export interface Tallied extends ConnStats {
  ready: boolean;
  closed: boolean;
  wireBytes: number;
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
