/** What the budget needs of a connection: how much it holds, its own limits, and a way to cut it. */
export interface Budgeted {
  /** Bytes held for this client (its queue plus what its socket has not sent), for ranking. */
  held(): number;
  /** Releases what its socket has sent since the last look. */
  settle(): void;
  /** Applies the connection's own hard and soft limits at `now`; cuts it when they say so. */
  enforce(now: number): void;
  cut(reason: "budget"): void;
  /** Ends the connection after one of the calls above threw. */
  destroy(reason: "error"): void;
}

/**
 * The relay-wide budget of bytes held for clients, so that thousands of stalled clients
 * cannot exhaust memory even though each stays within its own limits.
 *
 * It counts memory, not copies: every buffer the relay holds for any client — queued, or
 * handed to a socket and not yet sent — is counted once, however many clients hold it (a
 * message's frame is encoded once and shared by all its subscribers). So a 1 MiB message to
 * ten thousand readers costs 1 MiB of budget, not 10 GiB, while stalled clients holding
 * their own frames (a replay, a private copy) add up as they should.
 *
 * A sweep, every `sweepMs` while anything is held and at once when the budget is exceeded,
 * releases what sockets have sent since, applies each connection's soft limit (a client that
 * stops receiving still gets cut when its period runs out), and while the total is over the
 * budget cuts the connections that hold the most first.
 */
export class QueueBudget {
  private total = 0;
  private readonly refs = new Map<Buffer, number>();
  private readonly holding = new Set<Budgeted>();
  private timer?: NodeJS.Timeout;
  private sweepQueued = false;
  private stopped = false;

  constructor(
    readonly limitBytes: number,
    private readonly sweepMs = 250,
  ) {}

  /** Bytes held for clients now, each shared buffer once. */
  get bytes(): number {
    return this.total;
  }

  /** One more holder of `b`. */
  hold(b: Buffer): void {
    const n = this.refs.get(b);
    if (n !== undefined) {
      this.refs.set(b, n + 1);
      return;
    }
    this.refs.set(b, 1);
    this.total += b.length;
    if (this.total > this.limitBytes) this.sweepSoon();
  }

  /** One holder of `b` fewer. */
  release(b: Buffer): void {
    const n = this.refs.get(b);
    if (n === undefined) return;
    if (n > 1) {
      this.refs.set(b, n - 1);
      return;
    }
    this.refs.delete(b);
    this.total -= b.length;
  }

  /** The connection holds something: sweep it until `idle`. */
  busy(c: Budgeted): void {
    this.holding.add(c);
    if (!this.timer && !this.stopped) {
      this.timer = setInterval(this.sweep, this.sweepMs);
      this.timer.unref();
    }
  }

  idle(c: Budgeted): void {
    this.holding.delete(c);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweepSoon(): void {
    if (this.sweepQueued) return;
    this.sweepQueued = true;
    setImmediate(this.sweep);
  }

  private sweep = (): void => {
    this.sweepQueued = false;
    const now = Date.now();
    // The sweep runs from a timer: a connection that throws is ended, the sweep goes on.
    for (const c of this.holding) {
      try {
        c.settle();
        c.enforce(now);
      } catch {
        this.holding.delete(c);
        try {
          c.destroy("error");
        } catch {
          /* already gone */
        }
      }
    }
    if (this.total > this.limitBytes) {
      const largestFirst = [...this.holding].map((c) => [c, c.held()] as const).sort((a, b) => b[1] - a[1]);
      for (const [c] of largestFirst) {
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
