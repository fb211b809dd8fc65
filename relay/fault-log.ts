/**
 * Logs failures on the message path at most once per interval per place (a flood of bad
 * payloads, or a retry every few hundred ms through an outage, must not become a flood of
 * log lines), saying how many were not logged.
 */
export class FaultLog {
  private readonly last = new Map<string, { at: number; skipped: number }>();

  constructor(private readonly intervalMs = 10_000) {}

  /** `outcome`: what became of the work that failed. */
  report(where: string, err: unknown, outcome = "message skipped"): void {
    const now = Date.now();
    const seen = this.last.get(where);
    if (seen && now - seen.at < this.intervalMs) {
      seen.skipped++;
      return;
    }
    const skipped = seen?.skipped ?? 0;
    this.last.set(where, { at: now, skipped: 0 });
    const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    console.warn(`[fanout] ${where} failed (${outcome}): ${text.slice(0, 300)}${skipped ? ` (+${skipped} more not logged)` : ""}`);
  }
}
