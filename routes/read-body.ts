import type { Context } from "hono";
import { decodeJsonBody } from "../protocol/publish-request.js";
import { FanoutError } from "../protocol/errors.js";

function tooLarge(maxBytes: number): FanoutError {
  return new FanoutError(413, "payload_too_large", `body is larger than ${maxBytes} bytes`);
}

const unreadable = (): FanoutError => new FanoutError(400, "invalid_body", "could not read the request body");

/** Chunks of a body counted against its limit as they arrive: refused at the first byte over it. */
class LimitedBody {
  private readonly chunks: Uint8Array[] = [];
  private total = 0;
  constructor(private readonly maxBytes: number) {}

  add(chunk: Uint8Array): void {
    this.total += chunk.byteLength;
    if (this.total > this.maxBytes) throw tooLarge(this.maxBytes);
    this.chunks.push(chunk);
  }

  bytes(): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(this.total);
    let at = 0;
    for (const ch of this.chunks) {
      out.set(ch, at);
      at += ch.byteLength;
    }
    return out;
  }
}

/** What the relay's body reader needs of a Node `IncomingMessage` (`c.env.incoming` under @hono/node-server). */
interface NodeBody {
  on(event: "data", f: (chunk: Uint8Array) => void): unknown;
  on(event: "end" | "close", f: () => void): unknown;
  on(event: "error", f: (err: unknown) => void): unknown;
  off(event: string, f: (...args: never[]) => void): unknown;
  pause(): unknown;
  readableEnded: boolean;
  destroyed: boolean;
}

function nodeBody(c: Context): NodeBody | undefined {
  const incoming = (c.env as { incoming?: Partial<NodeBody> } | undefined)?.incoming;
  return incoming && typeof incoming.on === "function" && typeof incoming.pause === "function" && typeof incoming.readableEnded === "boolean" ? (incoming as NodeBody) : undefined;
}

/**
 * On Node the bytes are read from the `IncomingMessage` itself: `c.req.raw.body` would make
 * @hono/node-server build a Web `Request`, an `AbortSignal` and a `ReadableStream` over the
 * socket for every request, which measured as a third of the relay's CPU per publish.
 */
function readNode(incoming: NodeBody, body: LimitedBody): Promise<void> {
  return new Promise((resolve, reject) => {
    if (incoming.readableEnded) return resolve();
    if (incoming.destroyed) return reject(unreadable());
    const done = (err?: FanoutError): void => {
      incoming.off("data", onData);
      incoming.off("end", onEnd);
      incoming.off("error", onError);
      incoming.off("close", onClose);
      if (err) {
        // Stop reading, but do not destroy: that would take the 413 with it. The adapter
        // drains what is still in flight after the response (at most 500 ms or 64 MiB).
        incoming.pause();
        reject(err);
      } else resolve();
    };
    const onData = (chunk: Uint8Array): void => {
      try {
        body.add(chunk);
      } catch (err) {
        done(err as FanoutError);
      }
    };
    const onEnd = (): void => done();
    const onError = (): void => done(unreadable());
    const onClose = (): void => done(incoming.readableEnded ? undefined : unreadable());
    incoming.on("data", onData);
    incoming.on("end", onEnd);
    incoming.on("error", onError);
    incoming.on("close", onClose);
  });
}

/** From the Web stream (Workers natively, or Node without the adapter's `incoming`). */
async function readWeb(stream: ReadableStream<Uint8Array>, body: LimitedBody): Promise<void> {
  const reader = stream.getReader();
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch {
        throw unreadable();
      }
      if (next.done) break;
      body.add(next.value);
    }
  } finally {
    // Stop pulling, but do not cancel: on Node that destroys the socket and the 413 with it.
    // The runtime discards what is still in flight (node-server: at most 500 ms or 64 MiB,
    // then it closes the connection), so the sender reads the 413 instead of a reset.
    reader.releaseLock();
  }
}

/**
 * Reads a request body under a byte limit, in both runtimes. A declared Content-Length over
 * the limit is refused before a byte is read; a chunked body is counted as it arrives and
 * refused at the first byte over the limit, so memory never exceeds the limit whatever the
 * sender does.
 */
export async function readBody(c: Context, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge(maxBytes);
  const body = new LimitedBody(maxBytes);
  const incoming = nodeBody(c);
  if (incoming) {
    await readNode(incoming, body);
  } else {
    const stream = c.req.raw.body;
    if (stream) await readWeb(stream, body);
  }
  return body.bytes();
}

/** A JSON body under a byte limit. The content type is not enforced: `curl -d` sends form encoding by default. */
export async function readJson(c: Context, maxBytes: number): Promise<unknown> {
  return decodeJsonBody(await readBody(c, maxBytes), maxBytes);
}
