import { unavailable } from "../protocol/errors.js";

/**
 * Fails fast while Redis is unreachable instead of stacking timeouts: after `threshold`
 * consecutive failures the circuit opens for `cooldownMs`, and calls get 503 with the time
 * left as Retry-After; then one trial call is let through (half-open), whose outcome closes
 * or re-opens the circuit. State lives in the isolate, which Workers reuse across requests:
 * a soft hint, never needed for correctness.
 */
export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private trial = false;

  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const t = this.now();
    if (this.openUntil > t || (this.openUntil > 0 && this.trial)) {
      const wait = Math.max(1, Math.ceil((this.openUntil - t) / 1000));
      throw unavailable(`Redis is unreachable; not retrying for ${wait}s`, wait);
    }
    this.trial = this.openUntil > 0;
    try {
      const out = await fn();
      this.failures = 0;
      this.openUntil = 0;
      return out;
    } catch (err) {
      this.failures++;
      if (this.failures >= this.threshold) this.openUntil = this.now() + this.cooldownMs;
      const wait = this.openUntil > 0 ? Math.ceil(this.cooldownMs / 1000) : 1;
      // The client's message quotes the whole command (payloads included): keep the log short.
      const reason = (err instanceof Error ? err.message : String(err)).split(", command was:")[0].slice(0, 300);
      console.warn(`[fanout] ${what} failed (${this.failures} in a row): ${reason}`);
      throw unavailable(`Redis is unreachable: ${what} failed`, wait);
    } finally {
      this.trial = false;
    }
  }

  get isOpen(): boolean {
    return this.openUntil > this.now();
  }
}
