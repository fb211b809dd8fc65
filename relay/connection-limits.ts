import { isIP } from "node:net";
import { FanoutError } from "../protocol/errors.js";
import { toBytes } from "../protocol/glob.js";
import { checkPatternCost } from "../protocol/pattern-cost.js";

/**
 * The bucket an address is limited in: an IPv4 address, or the /64 an IPv6 address is in
 * (one host is routinely given a whole /64, so per-address limits on IPv6 would not limit).
 */
export function addressBucket(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  const [head, tail = ""] = ip.toLowerCase().split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups; it is in the low 64 bits.
  const groups = left.length + right.reduce((n, g) => n + (g.includes(".") ? 2 : 1), 0);
  const full = ip.includes("::") ? [...left, ...Array<string>(8 - groups).fill("0"), ...right] : left;
  return `${full.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

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

  /** Reserves a connection slot for a client address; the returned function releases it (once). */
  acquireConnection(address: string): () => void {
    const ip = addressBucket(address);
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
