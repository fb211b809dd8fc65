import type { Context } from "hono";
import type { IncomingMessage } from "node:http";
import { getCookie } from "hono/cookie";
import { bearer, unauthorized } from "../../routes/publish-auth.js";

/** The cookie a browser app may set for same-site (or CORS with credentials) subscriptions. */
export const TOKEN_COOKIE = "fanout_token";

/**
 * A subscriber's token: the Authorization header, else `?token=` (EventSource cannot set
 * headers), else the `fanout_token` cookie. The first one present is the one used.
 */
export function subscriberToken(c: Context): string | undefined {
  const h = bearer(c);
  if (h !== undefined) return h;
  const q = c.req.query("token");
  if (q !== undefined) return q;
  let cookie: string | undefined;
  try {
    cookie = getCookie(c, TOKEN_COOKIE);
  } catch {
    throw unauthorized(`the ${TOKEN_COOKIE} cookie cannot be read`);
  }
  return cookie;
}

export function remoteAddress(c: Context): string | undefined {
  return (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress;
}

export function isLoopback(addr: string | undefined): boolean {
  return addr === "::1" || addr === "::ffff:127.0.0.1" || (addr?.startsWith("127.") ?? false);
}
