import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { FanoutError } from "../protocol/errors.js";

/**
 * The one mapping from errors to HTTP, for both runtimes: FanoutError carries its status and
 * code; anything else is our fault and says so without leaking internals.
 */
export function errorResponse(err: unknown, c: Context): Response {
  if (err instanceof FanoutError) {
    return c.json(err.toJSON(), err.status, err.headers);
  }
  if (err instanceof HTTPException) {
    const status = err.status;
    const code = status === 413 ? "payload_too_large" : status === 404 ? "not_found" : "bad_request";
    return c.json({ error: { code, message: err.message || "bad request" } }, status);
  }
  console.error("[fanout] unexpected error:", err);
  return c.json({ error: { code: "internal", message: "internal error" } }, 500);
}
