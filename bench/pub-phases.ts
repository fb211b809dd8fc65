/**
 * What the two publisher workers (bench/pub-worker.ts over HTTP, bench/socketio-pub-worker.ts
 * through a Socket.IO emitter) share besides their IPC messages: the warm-up switch and the
 * round-trip sample.
 */

/**
 * Warm-up, then measurement: `warmup` publishes to channels of its own (same count and order as
 * the measured ones, so connection i carries the same share) for a while; `go` measures on the
 * start message's channels again. Counters are reset at each switch.
 */
export class PubPhases<C> {
  private measured: C[] = [];

  constructor(
    private readonly w: {
      channels(): C[];
      setChannels(channels: C[]): void;
      reset(): void;
      go(durationMs?: number): void;
    },
  ) {}

  warmup(channels: C[], durationMs: number): void {
    this.measured = this.w.channels();
    this.w.setChannels(channels);
    this.w.reset();
    this.w.go(durationMs);
  }

  go(): void {
    if (this.measured.length) {
      this.w.setChannels(this.measured);
      this.measured = [];
      this.w.reset();
    }
    this.w.go();
  }
}

/** Round-trip times in µs, at most 200,000 kept; the median and maximum as the `done` message carries them. */
export class RttSample {
  private readonly us: number[] = [];

  add(us: number): void {
    if (this.us.length < 200_000) this.us.push(us);
  }

  clear(): void {
    this.us.length = 0;
  }

  figures(): { rttP50Us: number; rttMaxUs: number } {
    const s = this.us.sort((a, b) => a - b);
    return { rttP50Us: s.length ? s[Math.floor(s.length / 2)] : 0, rttMaxUs: s.length ? s[s.length - 1] : 0 };
  }
}
