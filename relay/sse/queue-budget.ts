/** What the budget needs of a connection: how much it holds, its own limits, and a way to cut it. */
export interface Budgeted {
  /** Bytes this connection holds now (its queue plus what its socket has not sent). */
  held(): number;
  /** Applies the connection's own hard and soft limits at `now`; cuts it when they say so. */
  enforce(now: number): void;
  cut(reason: "budget"): void;
  /** What the budget last counted for this connection; the budget alone writes it. */
  accounted: number;
}

/**
 * The relay-wide budget of bytes held for clients, over all connections, so that thousands
 * of stalled clients cannot exhaust memory even though each stays within its own limits.
 *
 * Connections report growth as they queue (cheap: a sum) and their exact figure after each
 * write; a sweep, every `sweepMs` while any connection holds bytes and at once when the
 * budget is exceeded, re-reads the exact figures (sockets drain between reports), applies
 * each connection's soft limit (a client that stops receiving still gets cut when its
 * period runs out), and when the total is still over the budget cuts the connections that
 * hold the most first, until it is not.
 *
 * A frame shared by many clients is counted once per client, so the total is an upper bound
 * on what the queues really pin in memory.
 */
export class QueueBudget {
  private total = 0;
  private readonly holding = new Set<Budgeted>();
  private timer?: NodeJS.Timeout;
  private sweepQueued = false;
  private stopped = false;

  constructor(
    readonly limitBytes: number,
    private readonly sweepMs = 250,
  ) {}

  /** Bytes held over all connections, as last counted. */
  get bytes(): number {
    return this.total;
  }

  /** A connection queued `bytes` more. */
  grow(c: Budgeted, bytes: number): void {
    if (c.accounted === 0) this.watch(c);
    c.accounted += bytes;
    this.total += bytes;
    if (this.total > this.limitBytes) this.sweepSoon();
  }

  /** A connection's exact figure (after a write, on drain). */
  report(c: Budgeted, held: number): void {
    this.total += held - c.accounted;
    c.accounted = held;
    if (held > 0) this.watch(c);
    else this.holding.delete(c);
  }

  /** The connection is gone: nothing it held counts any more. */
  remove(c: Budgeted): void {
    this.total -= c.accounted;
    c.accounted = 0;
    this.holding.delete(c);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private watch(c: Budgeted): void {
    this.holding.add(c);
    if (!this.timer && !this.stopped) {
      this.timer = setInterval(this.sweep, this.sweepMs);
      this.timer.unref();
    }
  }

  private sweepSoon(): void {
    if (this.sweepQueued) return;
    this.sweepQueued = true;
    setImmediate(this.sweep);
  }

  private sweep = (): void => {
    this.sweepQueued = false;
    const now = Date.now();
    for (const c of this.holding) {
      this.report(c, c.held());
      c.enforce(now);
    }
    if (this.total > this.limitBytes) {
      const largestFirst = [...this.holding].sort((a, b) => b.accounted - a.accounted);
      for (const c of largestFirst) {
        if (this.total <= this.limitBytes) break;
        c.cut("budget");
      }
    }
    if (this.holding.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  };
}
