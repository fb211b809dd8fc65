import { globMatchBytes, toBytes } from "../../protocol/glob.js";
import type { Delivery, LogEntry } from "./broker.js";

/**
 * The live subscription set of one relay: exact channels and glob patterns (compiled to
 * bytes once). Routes a log entry the way Redis would: one copy for the exact channel, one
 * per matching pattern. Used by the memory broker for live messages and by the hub when it
 * catches up from the log after a broker drop.
 */
export class SubscriptionSet {
  readonly channels = new Set<string>();
  readonly patterns = new Map<string, Uint8Array>();

  addPattern(p: string): void {
    if (!this.patterns.has(p)) this.patterns.set(p, toBytes(p));
  }

  route(e: LogEntry, emit: (d: Delivery) => void): number {
    let n = 0;
    if (this.channels.has(e.channel)) {
      emit(e);
      n++;
    }
    if (this.patterns.size > 0) {
      const bytes = toBytes(e.channel);
      for (const [pattern, pb] of this.patterns) {
        if (globMatchBytes(pb, bytes)) {
          emit({ ...e, pattern });
          n++;
        }
      }
    }
    return n;
  }
}
