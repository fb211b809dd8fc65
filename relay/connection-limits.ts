import { FanoutError } from "../protocol/errors.js";
import { toBytes } from "../protocol/glob.js";
import { checkPatternCost } from "../protocol/pattern-cost.js";

/** Per-relay caps on streams, total and per client IP, answered with 429 before any work. */
export class ConnectionLimits {
  private total = 0;
  private readonly perIp = new Map<string, number>();

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerIp: number,
    private readonly maxPatternStars: number,
    private readonly maxPatternBytes: number,
  ) {}

  /** Reserves a connection slot; the returned function releases it (once). */
  acquireConnection(ip: string): () => void {
    const mine = this.perIp.get(ip) ?? 0;
    if (this.total >= this.maxTotal) this.refuse("too_many_connections", "the relay is at its connection limit");
    if (mine >= this.maxPerIp) this.refuse("too_many_connections_from_ip", "too many connections from this address");
    this.total++;
    this.perIp.set(ip, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const n = (this.perIp.get(ip) ?? 1) - 1;
      if (n <= 0) this.perIp.delete(ip);
      else this.perIp.set(ip, n);
    };
  }

  /**
   * Bounds matcher cost per pattern: its length (every published channel is matched against
   * it) and its runs of `*`, which are what make glob matching backtrack.
   */
  checkPatterns(patterns: string[]): void {
    for (const p of patterns) {
      if (toBytes(p).length > this.maxPatternBytes) {
        throw new FanoutError(400, "pattern_too_long", `a pattern may be at most ${this.maxPatternBytes} bytes (FANOUT_MAX_PATTERN_BYTES)`);
      }
      checkPatternCost(p, this.maxPatternStars);
    }
  }

  private refuse(code: string, message: string): never {
    throw new FanoutError(429, code, message, { "Retry-After": "5" });
  }
}
