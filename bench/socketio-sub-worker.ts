/**
 * Subscriber child process for the `socketio-redis` target: the same IPC protocol and report
 * as bench/sub-worker.ts, with socket.io-client (websocket transport, one Manager per client:
 * `forceNew`, so every subscriber is its own connection, as in a browser) instead of raw SSE.
 * A subscriber's channel is its `path` (the room); it is live once the server says `ready`.
 * Driven over IPC by bench/run.ts; never started by hand.
 */
import { io, type Socket } from "socket.io-client";
import { countSeq, runSubWorker, SubCounters, SubTally } from "./sub-tally.js";
import { nowUs } from "./sse-client.js";
import type { SubConnSpec } from "./sub-worker.js";

/** One Socket.IO subscriber and what it received. */
class SioConn extends SubCounters {
  readonly s: Socket;

  constructor(
    url: string,
    readonly spec: SubConnSpec,
    timeoutMs: number,
    onReady: () => void,
    onFail: (why: string) => void,
  ) {
    // `wireBytes`: WebSocket frame bytes of message packets (engine.io + socket.io framing, ws header).
    super();
    this.s = io(url, { transports: ["websocket"], forceNew: true, reconnection: false, timeout: timeoutMs, auth: { channels: [spec.path] } });
    this.s.once("ready", () => {
      if (this.ready || this.failed) return;
      this.ready = true;
      onReady();
    });
    this.s.on("connect_error", (e: Error) => {
      if (this.ready || this.failed) return;
      this.failed = true;
      onFail(`connect_error: ${e.message}`);
    });
    this.s.on("disconnect", (why: string) => {
      this.closed = true;
      if (!this.ready && !this.failed) {
        this.failed = true;
        onFail(`disconnected before ready: ${why}`);
      }
    });
    this.s.on("message", (d: { q?: unknown; t?: unknown; k?: unknown }) => this.message(d));
    this.s.io.on("open", () => {
      this.s.io.engine.on("packet", (p: { type: string; data?: unknown }) => {
        if (p.type !== "message" || typeof p.data !== "string") return;
        const n = Buffer.byteLength(p.data) + 1; // + the engine.io packet type
        this.wireBytes += n + (n < 126 ? 2 : n < 65536 ? 4 : 10); // server frames are unmasked
      });
    });
  }

  private message(d: { q?: unknown; t?: unknown; k?: unknown }): void {
    const q = typeof d?.q === "number" ? d.q : -1;
    const t = typeof d?.t === "number" ? d.t : -1;
    if (q < 1 || t < 0) {
      this.malformed++;
      return;
    }
    this.received++;
    if (d.k !== this.spec.key) this.wrongKey++;
    tally.hist.record(nowUs() - t);
    countSeq(this, q);
  }

  close(): void {
    this.s.disconnect();
  }
}

const tally = new SubTally<SioConn>();

runSubWorker<SioConn>({
  tally,
  open: (m, spec, onReady, onFail) => new SioConn(`http://${m.host}:${m.port}`, spec, m.timeoutMs, onReady, onFail),
  keyOf: (c) => c.spec.key,
});
