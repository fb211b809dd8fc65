/**
 * Coalesces writes: frames queued during one event-loop turn (a burst of broker messages
 * parsed from one socket read, or a replay page) reach each socket as one write.
 */
export interface Flushable {
  flush(): void;
}

export class FlushScheduler {
  private dirty = new Set<Flushable>();
  private scheduled = false;

  schedule(f: Flushable): void {
    this.dirty.add(f);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  private run = (): void => {
    this.scheduled = false;
    const batch = this.dirty;
    this.dirty = new Set();
    for (const f of batch) f.flush();
  };
}
