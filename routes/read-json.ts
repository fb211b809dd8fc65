import type { Context } from "hono";
import { decodeJsonBody } from "../protocol/publish-request.js";
import { FanoutError } from "../protocol/errors.js";

/**
 * Reads a JSON body under a byte limit. Content-Length is checked first so an oversized body
 * is refused before it is buffered; the decoded size is checked again for chunked bodies.
 * The content type is not enforced: `curl -d` sends form encoding by default.
 */
export async function readJson(c: Context, maxBytes: number): Promise<{ raw: Uint8Array; body: unknown }> {
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > maxBytes) {
    throw new FanoutError(413, "payload_too_large", `body is larger than ${maxBytes} bytes`);
  }
  let raw: Uint8Array;
  try {
    raw = new Uint8Array(await c.req.arrayBuffer());
  } catch {
    throw new FanoutError(400, "invalid_body", "could not read the request body");
  }
  return { raw, body: decodeJsonBody(raw, maxBytes) };
}
