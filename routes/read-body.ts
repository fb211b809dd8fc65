import type { Context } from "hono";
import { decodeJsonBody } from "../protocol/publish-request.js";
import { FanoutError } from "../protocol/errors.js";

/**
 * Reads a request body under a byte limit. Content-Length is checked first so an oversized
 * body is refused before it is buffered; the read size is checked again for chunked bodies.
 */
export async function readBody(c: Context, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > maxBytes) {
    throw new FanoutError(413, "payload_too_large", `body is larger than ${maxBytes} bytes`);
  }
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = new Uint8Array(await c.req.arrayBuffer());
  } catch {
    throw new FanoutError(400, "invalid_body", "could not read the request body");
  }
  if (raw.byteLength > maxBytes) throw new FanoutError(413, "payload_too_large", `body is larger than ${maxBytes} bytes`);
  return raw;
}

/** A JSON body under a byte limit. The content type is not enforced: `curl -d` sends form encoding by default. */
export async function readJson(c: Context, maxBytes: number): Promise<unknown> {
  return decodeJsonBody(await readBody(c, maxBytes), maxBytes);
}
