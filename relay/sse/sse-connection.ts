import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { detachFromHttp } from "../http-server.js";
import type { FlushScheduler } from "./flush-scheduler.js";
import { GzipStream } from "./gzip-stream.js";
import type { Budgeted, QueueBudget } from "./queue-budget.js";

/**
 * The slow-consumer policy, after Redis's `client-output-buffer-limit pubsub 32mb 8mb 60`.
 * What counts is what is held for the client: frames queued here plus bytes handed to the
 * socket and not yet taken by the kernel.
 */
export interface QueueLimits {
  /** Cut at once when more than this is held before a frame is added. */
  hardBytes: number;
  /** Cut when more than this is held continuously for `softMs`. */
  softBytes: number;
  softMs: number;
  /** More frames than this in the queue counts as over the soft limit too. */
  maxMessages: number;
}

export type SlowReason = "hard" | "soft" | "budget";
export type CloseReason = "client" | "drain" | "error" | SlowReason;

/**
 * Batches up to this size are copied into one buffer for one write (cheaper than a vectored
 * write of small frames); larger ones are written as references to the shared frames, so a
 * backed-up client does not pin a private copy of what every other client also holds.
 */
const COPY_MAX_BYTES = 64 * 1024;

const CONNECTION = Symbol("sseConnection");
type OwnedSocket = Socket & { [CONNECTION]?: SseConnection };

/**
 * One SSE response with a bounded outbound queue. Frames are shared Buffers (encoded once
 * per message, written to every matching client); the queue holds references, not copies.
 * While the socket is not draining we write; when it pushes back we queue. A client is cut
 * only by the limits of `QueueLimits` or by the relay-wide `QueueBudget`: it can only ever
 * hurt itself, and a client that keeps reading survives bursts far above the soft limit.
 *
 * The limits are checked before a frame is added, so one frame larger than them still goes
 * to a client that is keeping up (a stalled one holds at most the hard limit plus a frame).
 *
 * The body goes to the socket directly, without chunked encoding (the response is sent with
 * `Connection: close`; an event stream ends with its connection anyway). That makes a flush
 * one `write` of one buffer, skipping Node's per-write HTTP framing, which measured as most
 * of the relay's CPU per delivery. Once the head is sent the connection is taken from
 * `node:http` (`detachFromHttp`): an idle stream then holds its socket and this object, not
 * Node's request, response and parser.
 */
export class SseConnection implements Budgeted {
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  /** Buffers handed to the socket, oldest first, until it has sent them (see `settle`). */
  private inflight: Buffer[] = [];
  private inflightHead = 0;
  private inflightBytes = 0;
  private waitingDrain = false;
  private drainWaiters: Array<() => void> = [];
  readonly socket: Socket;
  /** Until the head is sent (and, where detaching is not possible, for good). */
  private res: ServerResponse | undefined;
  private opened = false;
  /** The head is in the socket's buffer, corked until the first flush. */
  private headCorked = false;
  /** Set when the client gets `Content-Encoding: gzip` (`FANOUT_COMPRESSION`). */
  private gzip: GzipStream | undefined;
  private overSoftSince: number | undefined;
  closed = false;

  constructor(
    res: ServerResponse,
    private readonly limits: QueueLimits,
    private readonly scheduler: FlushScheduler,
    private readonly budget: QueueBudget,
    private readonly onClose: (reason: CloseReason) => void,
  ) {
    this.res = res;
    this.socket = res.socket!;
    (this.socket as OwnedSocket)[CONNECTION] = this;
    this.socket.on("close", SseConnection.onSocketClose);
    this.socket.on("error", SseConnection.onSocketError);
  }

  /** Sends this stream gzip-compressed (before `open`; the caller sets `Content-Encoding`). */
  useGzip(): void {
    this.gzip = new GzipStream();
  }

  /** Sends the status line and headers; frames may be written from now on. */
  open(headers: Record<string, string>): void {
    const res = this.res!;
    res.useChunkedEncodingByDefault = false;
    res.writeHead(200, headers);
    // The head waits in the corked socket for the first frames (retry, ready): one write per
    // new stream instead of two.
    this.socket.cork();
    this.headCorked = true;
    res.flushHeaders();
    this.opened = true;
    if (detachFromHttp(res)) {
      this.res = undefined;
      // Nothing the client sends on a stream is read as a request (its response never ends,
      // so none could be answered); a half-close ends the stream, as node:http would.
      this.socket.on("data", ignore);
      this.socket.on("end", SseConnection.onSocketEnd);
      this.socket.resume();
    }
    if (this.gzip) this.enqueue(this.gzip.header());
  }

  // Socket listeners are shared functions that find their connection on the socket: a
  // closure per listener per connection would cost an idle stream ~1 KB (each also gets a
  // property store for its `name` when the code runs under tsx).
  private static onSocketClose(this: OwnedSocket): void {
    this[CONNECTION]?.finish("client");
  }

  private static onSocketError(this: OwnedSocket): void {
    this[CONNECTION]?.finish("error");
  }

  private static onSocketEnd(this: OwnedSocket): void {
    const conn = this[CONNECTION];
    if (!conn) return;
    conn.flushNow();
    conn.socket.end();
  }

  private static onSocketDrain(this: OwnedSocket): void {
    this[CONNECTION]?.onDrain();
  }

  /** Bytes held for this client: queued here, or handed to the socket and not yet sent. */
  held(): number {
    return this.queuedBytes + this.socket.writableLength;
  }

  /** Queues a frame; false when the connection is gone or was cut as too slow. */
  send(frame: Buffer): boolean {
    if (this.closed) return false;
    return this.enqueue(this.gzip ? this.gzip.encode(frame) : frame);
  }

  private enqueue(frame: Buffer): boolean {
    if (!this.enforce()) return false;
    if (this.queue.length === 0 && this.inflightBytes === 0) this.budget.busy(this);
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    this.budget.hold(frame);
    if (!this.waitingDrain) this.scheduler.schedule(this);
    return true;
  }

  /** Applies the hard and soft limits; false when the connection was cut. */
  enforce(now?: number): boolean {
    if (this.closed) return false;
    const held = this.held();
    if (held > this.limits.hardBytes) {
      this.destroy("hard");
      return false;
    }
    if (held <= this.limits.softBytes && this.queue.length <= this.limits.maxMessages) {
      this.overSoftSince = undefined;
      return true;
    }
    now ??= Date.now();
    this.overSoftSince ??= now;
    if (now - this.overSoftSince >= this.limits.softMs) {
      this.destroy("soft");
      return false;
    }
    return true;
  }

  cut(reason: SlowReason): void {
    this.destroy(reason);
  }

  /** Releases, from the budget, the buffers the socket has sent since the last look. */
  settle(): void {
    let sent = this.inflightBytes - this.socket.writableLength;
    while (this.inflightHead < this.inflight.length && this.inflight[this.inflightHead].length <= sent) {
      const b = this.inflight[this.inflightHead++];
      sent -= b.length;
      this.inflightBytes -= b.length;
      this.budget.release(b);
    }
    if (this.inflightHead === this.inflight.length) {
      this.inflight.length = 0;
      this.inflightHead = 0;
      if (this.queue.length === 0) this.budget.idle(this);
    }
  }

  flush(): void {
    if (this.closed || !this.opened || this.waitingDrain || this.queue.length === 0) return;
    this.settle();
    const q = this.queue;
    const bytes = this.queuedBytes;
    this.queue = [];
    this.queuedBytes = 0;
    const ok = this.write(q, bytes);
    if (this.headCorked) {
      this.headCorked = false;
      this.socket.uncork();
    }
    // A write the kernel took whole is done already: nothing stays counted for a reader.
    this.settle();
    if (!ok) {
      this.waitingDrain = true;
      this.socket.once("drain", SseConnection.onSocketDrain);
    } else {
      if (this.overSoftSince !== undefined) this.enforce();
      this.wakeDrainWaiters();
    }
  }

  private write(q: Buffer[], bytes: number): boolean {
    this.inflightBytes += bytes;
    if (q.length === 1) {
      this.inflight.push(q[0]);
      return this.socket.write(q[0]);
    }
    if (bytes <= COPY_MAX_BYTES) {
      const copy = Buffer.concat(q, bytes);
      this.budget.hold(copy);
      for (const b of q) this.budget.release(b);
      this.inflight.push(copy);
      return this.socket.write(copy);
    }
    this.socket.cork();
    let ok = true;
    for (const b of q) {
      this.inflight.push(b);
      ok = this.socket.write(b);
    }
    this.socket.uncork();
    return ok;
  }

  /** Resolves when the queue is empty and the socket accepts more (or the connection ends). */
  async drained(): Promise<void> {
    if (this.closed || (!this.waitingDrain && this.queue.length === 0)) return;
    await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  private onDrain(): void {
    this.waitingDrain = false;
    if (this.closed) return;
    this.settle();
    // The client caught up: a soft-limit period in progress ends here.
    this.enforce();
    if (this.queue.length > 0) this.flush();
    else this.wakeDrainWaiters();
  }

  private wakeDrainWaiters(): void {
    if (this.drainWaiters.length === 0 || this.queue.length > 0) return;
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }

  /** Ends the stream cleanly after what is queued (SIGTERM drain). */
  end(): void {
    if (this.closed) return;
    if (this.gzip && this.opened) this.enqueue(this.gzip.trailer());
    this.flushNow();
    if (!this.opened) this.socket.destroy();
    else if (this.res) this.res.end();
    else this.socket.end();
    this.finish("drain");
  }

  /** Drops the connection at once (slow consumer, protocol error). */
  destroy(reason: CloseReason): void {
    if (this.closed) return;
    this.finish(reason);
    this.socket.destroy();
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
    for (const b of this.queue) this.budget.release(b);
    for (let i = this.inflightHead; i < this.inflight.length; i++) this.budget.release(this.inflight[i]);
    this.queue = [];
    this.queuedBytes = 0;
    this.inflight = [];
    this.inflightBytes = 0;
    this.budget.idle(this);
    this.socket.off("drain", SseConnection.onSocketDrain);
    // A setup that failed gives the connection back to node:http for its error response.
    if (!this.opened) {
      this.socket.off("close", SseConnection.onSocketClose);
      this.socket.off("error", SseConnection.onSocketError);
      (this.socket as OwnedSocket)[CONNECTION] = undefined;
    }
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
    this.onClose(reason);
  }
}

function ignore(): void {}
