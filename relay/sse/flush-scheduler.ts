/**
 * Coalesces writes: frames queued for a connection between two flush passes reach its socket
 * as one write.
 *
 * A write costs a system call whatever its size, and on a busy relay those calls are most of
 * the CPU per delivery. So the pause before the next pass adapts to load: while passes are
 * cheap the next one runs on the next event-loop turn (no added latency); once a pass takes
 * longer than `triggerMs`, the scheduler lingers about twice as long as that pass took (at most
 * `maxLingerMs`), so each socket write carries several messages instead of one.
 */
export interface Flushable {
  flush(): void;
  /** Ends this connection after its flush threw (a write it could not take). */
  destroy(reason: "error"): void;
}

export class FlushScheduler {
  private dirty = new Set<Flushable>();
  private scheduled = false;
  private lingerMs = 0;

  constructor(
    private readonly maxLingerMs: number,
    private readonly triggerMs = 0.25,
  ) {}

  schedule(f: Flushable): void {
    this.dirty.add(f);
    if (this.scheduled) return;
    this.scheduled = true;
    if (this.lingerMs > 0) setTimeout(this.run, this.lingerMs);
    else setImmediate(this.run);
  }

  private run = (): void => {
    this.scheduled = false;
    const batch = this.dirty;
    this.dirty = new Set();
    const t0 = performance.now();
    // A pass runs from a timer: a flush that throws costs its connection, never the process
    // or the other connections of the pass.
    for (const f of batch) {
      try {
        f.flush();
      } catch {
        try {
          f.destroy("error");
        } catch {
          /* already gone */
        }
      }
    }
    const took = performance.now() - t0;
    this.lingerMs = took > this.triggerMs ? Math.min(this.maxLingerMs, Math.ceil(took * 2)) : 0;
  };
}
