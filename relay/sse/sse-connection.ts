import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { FlushScheduler } from "./flush-scheduler.js";

export interface QueueLimits {
  maxBytes: number;
  maxMessages: number;
}

export type CloseReason = "client" | "slow" | "drain" | "error";

/**
 * One SSE response with a bounded outbound queue. Frames are shared Buffers (encoded once
 * per message, written to every matching client); the queue holds references, not copies.
 * While the socket is not draining we write; when it pushes back we queue, and a client that
 * overflows the queue is disconnected: it can only ever hurt itself.
 *
 * The body goes to the socket directly, without chunked encoding (the response is sent with
 * `Connection: close`; an event stream ends with its connection anyway). That makes a flush
 * one `write` of one buffer, skipping Node's per-write HTTP framing, which measured as most
 * of the relay's CPU per delivery.
 */
export class SseConnection {
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private waitingDrain = false;
  private drainWaiters: Array<() => void> = [];
  private readonly socket: Socket;
  private opened = false;
  closed = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly limits: QueueLimits,
    private readonly scheduler: FlushScheduler,
    private readonly onClose: (reason: CloseReason) => void,
  ) {
    this.socket = res.socket!;
    res.on("close", () => this.finish("client"));
    res.on("error", () => this.finish("error"));
  }

  /** Sends the status line and headers; frames may be written from now on. */
  open(headers: Record<string, string>): void {
    this.res.useChunkedEncodingByDefault = false;
    this.res.writeHead(200, headers);
    this.res.flushHeaders();
    this.opened = true;
  }

  /** Queues a frame; false when the connection is gone or was dropped as too slow. */
  send(frame: Buffer): boolean {
    if (this.closed) return false;
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    if (this.queuedBytes > this.limits.maxBytes || this.queue.length > this.limits.maxMessages) {
      this.destroy("slow");
      return false;
    }
    if (!this.waitingDrain) this.scheduler.schedule(this);
    return true;
  }

  flush(): void {
    if (this.closed || !this.opened || this.waitingDrain || this.queue.length === 0) return;
    const q = this.queue;
    const bytes = this.queuedBytes;
    this.queue = [];
    this.queuedBytes = 0;
    const ok = this.socket.write(q.length === 1 ? q[0] : Buffer.concat(q, bytes));
    if (!ok) {
      this.waitingDrain = true;
      this.socket.once("drain", this.onDrain);
    } else {
      this.wakeDrainWaiters();
    }
  }

  /** Resolves when the queue is empty and the socket accepts more (or the connection ends). */
  async drained(): Promise<void> {
    if (this.closed || (!this.waitingDrain && this.queue.length === 0)) return;
    await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  private onDrain = (): void => {
    this.waitingDrain = false;
    if (this.queue.length > 0) this.flush();
    else this.wakeDrainWaiters();
  };

  private wakeDrainWaiters(): void {
    if (this.drainWaiters.length === 0 || this.queue.length > 0) return;
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }

  /** Ends the stream cleanly after what is queued (SIGTERM drain). */
  end(): void {
    if (this.closed) return;
    this.flushNow();
    if (this.opened) this.res.end();
    else this.res.destroy();
    this.finish("drain");
  }

  /** Drops the connection at once (slow consumer, protocol error). */
  destroy(reason: CloseReason): void {
    if (this.closed) return;
    this.finish(reason);
    this.res.destroy();
  }

  /** Gives the response back untouched (setup failed before any byte was written). */
  cancel(): void {
    this.finish("error");
  }

  private flushNow(): void {
    this.waitingDrain = false;
    this.flush();
  }

  private finish(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.socket.off("drain", this.onDrain);
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
    this.onClose(reason);
  }
}
