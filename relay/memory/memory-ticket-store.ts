import { FanoutError } from "../../protocol/errors.js";
import type { TicketStore } from "../../protocol/auth/ticket-store.js";

/** Tickets held at once before issuing is refused: a key holder cannot grow the map without bound. */
const MAX_TICKETS = 100_000;

/** Tickets for the embedded broker: one process, so a Map delete is the atomic take. */
export class MemoryTicketStore implements TicketStore {
  private readonly entries = new Map<string, { value: string; expires: number }>();

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    if (this.entries.size >= MAX_TICKETS) this.sweep();
    if (this.entries.size >= MAX_TICKETS) throw new FanoutError(429, "too_many_tickets", "too many unused tickets; retry shortly", { "Retry-After": "5" });
    this.entries.set(key, { value, expires: Date.now() + ttlMs });
  }

  async take(key: string): Promise<string | undefined> {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    return e.expires > Date.now() ? e.value : undefined;
  }


  private sweep(): void {
    const now = Date.now();
    for (const [k, e] of this.entries) if (e.expires <= now) this.entries.delete(k);
  }
}
