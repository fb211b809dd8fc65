import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";

/**
 * CORS for `/v1/*` (publish, tickets, SSE) from `FANOUT_CORS_ORIGINS`: a list of origins,
 * answered with credentials (cookies, Authorization), or `*` alone, answered without them
 * (browsers refuse `*` with credentials). Unset: no CORS headers, same-origin only.
 *
 * Runs before the routes: the SSE route writes its headers itself and copies the
 * `access-control-*` and `vary` headers set here, so `Vary: Origin` is set before `next()`
 * rather than after it as hono/cors does.
 */
const ALREADY_SENT = "x-hono-already-sent";

function dedupeVary(headers: Headers): void {
  const vary = headers.get("Vary");
  if (vary) headers.set("Vary", [...new Set(vary.split(",").map((v) => v.trim()))].join(", "));
}

export function corsMiddleware(origins: readonly string[]): MiddlewareHandler | undefined {
  if (origins.length === 0) return undefined;
  const wildcard = origins.includes("*");
  const inner = cors({
    origin: wildcard ? "*" : [...origins],
    credentials: !wildcard,
    allowMethods: ["GET", "POST", "OPTIONS"],
    // traceparent/tracestate: browsers with tracing instrumentation send them on publishes (meta.traceparent).
    allowHeaders: ["Authorization", "Content-Type", "Last-Event-ID", "Cache-Control", "X-Requested-With", "traceparent", "tracestate"],
    exposeHeaders: ["Retry-After"],
    maxAge: 600,
  });
  return async (c, next) => {
    if (!wildcard) c.res.headers.set("Vary", "Origin");
    const preflight = await inner(c, next);
    if (preflight) {
      dedupeVary(preflight.headers);
      return preflight;
    }
    dedupeVary(c.res.headers);
    // The SSE route answers RESPONSE_ALREADY_SENT. Behind a middleware that touched c.res,
    // Hono re-wraps it into @hono/node-server's cached response form, whose fast path
    // ignores the already-sent marker and writes a second head. Setting a header through
    // c.header re-wraps it once more into the form whose marker is honoured.
    if (c.res.headers.has(ALREADY_SENT)) c.header(ALREADY_SENT, "true");
  };
}
