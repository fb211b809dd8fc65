import { isIP } from "node:net";
import { FanoutError } from "../protocol/errors.js";
import { checkPatternCosts, patternCost, type PatternCostLimits } from "../protocol/pattern-cost.js";

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

/**
 * Per-relay caps on streams, answered before any work: 429 past the total or per-IP count,
 * 400 for patterns one connection may not hold, 503 when the relay's pattern budget is spent.
 *
 * The pattern budget bounds what routing one message can cost. Every distinct pattern open
 * on the relay is matched against every message routed to it (by the relay itself on both
 * brokers: in Redis mode Redis only sees a few broad prefix patterns) — so the relay sums
 * the worst-case cost (`patternCost`) of its distinct patterns: a pattern joins the sum when
 * its first stream opens and leaves it when its last stream closes, and a stream that would
 * push the sum past `maxRelayPatternCost` is refused.
 */
export class ConnectionLimits {
  private total = 0;
  private readonly perIp = new Map<string, number>();
  private readonly patterns = new Map<string, { cost: number; streams: number }>();
  private patternCostInUse = 0;

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerIp: number,
    private readonly patternLimits: PatternCostLimits,
    private readonly maxRelayPatternCost: number,
  ) {}

  /** Worst-case matching steps per message of the distinct patterns open now. */
  get patternCost(): number {
    return this.patternCostInUse;
  }

  /**
   * Reserves a connection slot and the relay-wide cost of its patterns (already through
   * `checkPatterns`); the returned function releases both (once).
   */
  acquireConnection(address: string, patterns: readonly string[] = []): () => void {
    const ip = addressBucket(address);
    const mine = this.perIp.get(ip) ?? 0;
    if (this.total >= this.maxTotal) this.refuse("too_many_connections", "the relay is at its connection limit");
    if (mine >= this.maxPerIp) this.refuse("too_many_connections_from_ip", "too many connections from this address");
    const releasePatterns = this.leasePatterns(patterns);
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
      releasePatterns();
    };
  }

  /**
   * Holds `patterns` in the relay-wide budget (503 `pattern_budget_exhausted` when the ones not
   * yet open would push it past `maxRelayPatternCost`); the returned function releases them
   * (once). A stream whose patterns change takes a lease on its new set, then releases the old.
   */
  leasePatterns(patterns: readonly string[]): () => void {
    const distinct = [...new Set(patterns)];
    // The cost of each pattern not yet open on the relay, computed once.
    const fresh = new Map<string, number>();
    let added = 0;
    for (const p of distinct) {
      if (this.patterns.has(p)) continue;
      const cost = patternCost(p);
      fresh.set(p, cost);
      added += cost;
    }
    if (added > 0 && this.patternCostInUse + added > this.maxRelayPatternCost) {
      throw new FanoutError(
        503,
        "pattern_budget_exhausted",
        "the relay's patterns are at their matching budget (FANOUT_MAX_RELAY_PATTERN_COST); retry later, or use channels or patterns that end in *",
        { "Retry-After": "30" },
      );
    }
    for (const p of distinct) {
      const held = this.patterns.get(p);
      if (held) held.streams++;
    }
    for (const [p, cost] of fresh) {
      this.patterns.set(p, { cost, streams: 1 });
      this.patternCostInUse += cost;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const p of distinct) {
        const held = this.patterns.get(p);
        if (!held || --held.streams > 0) continue;
        this.patterns.delete(p);
        this.patternCostInUse -= held.cost;
      }
    };
  }

  /**
   * What one connection's patterns may cost (see protocol/pattern-cost.ts): bytes, `*` runs
   * and worst-case matching steps, each pattern and all together. 400 otherwise.
   */
  checkPatterns(patterns: readonly string[]): void {
    checkPatternCosts(patterns, this.patternLimits);
  }

  private refuse(code: string, message: string): never {
    throw new FanoutError(429, code, message, { "Retry-After": "5" });
  }
}
