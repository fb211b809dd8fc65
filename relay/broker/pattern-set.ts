import type { Delivery, LogEntry } from "./broker.js";
import { PatternIndex } from "./pattern-index.js";

/**
 * The live subscription set of one relay: exact channels and glob patterns. Routes a log
 * entry the way Redis would: one copy for the exact channel, one per matching pattern (all but
 * the first marked `again`, as the Redis broker marks the copies of one PUBLISH). Used
 * by the memory broker for live messages and by the hub when it catches up from the log
 * after a broker drop.
 */
export class SubscriptionSet {
  readonly channels = new Set<string>();
  readonly patterns = new PatternIndex();

  route(e: LogEntry, emit: (d: Delivery) => void): number {
    let n = 0;
    if (this.channels.has(e.channel)) {
      emit(e);
      n++;
    }
    this.patterns.forEachMatch(e.channel, (pattern) => {
      emit({ ...e, pattern, again: n > 0 });
      n++;
    });
    return n;
  }
}
