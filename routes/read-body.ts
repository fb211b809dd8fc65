import type { Context } from "hono";
import { decodeJsonBody } from "../protocol/publish-request.js";
import { FanoutError } from "../protocol/errors.js";

function tooLarge(maxBytes: number): FanoutError {
  return new FanoutError(413, "payload_too_large", `body is larger than ${maxBytes} bytes`);
}

/**
 * Reads a request body under a byte limit, from the Web stream both runtimes give (Node via
 * @hono/node-server, Workers natively). A declared Content-Length over the limit is refused
 * before a byte is read; a chunked body is counted as it arrives and refused at the first
 * byte over the limit, so memory never exceeds the limit whatever the sender does.
 */
export async function readBody(c: Context, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge(maxBytes);
  const body = c.req.raw.body;
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch {
        throw new FanoutError(400, "invalid_body", "could not read the request body");
      }
      if (next.done) break;
      total += next.value.byteLength;
      if (total > maxBytes) throw tooLarge(maxBytes);
      chunks.push(next.value);
    }
  } finally {
    // Stop pulling, but do not cancel: on Node that destroys the socket and the 413 with it.
    // The runtime discards what is still in flight (node-server: at most 500 ms or 64 MiB,
    // then it closes the connection), so the sender reads the 413 instead of a reset.
    reader.releaseLock();
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const ch of chunks) {
    out.set(ch, at);
    at += ch.byteLength;
  }
  return out;
}

/** A JSON body under a byte limit. The content type is not enforced: `curl -d` sends form encoding by default. */
export async function readJson(c: Context, maxBytes: number): Promise<unknown> {
  return decodeJsonBody(await readBody(c, maxBytes), maxBytes);
}
