import type { Context } from "hono";
import type { IncomingMessage } from "node:http";
import { getCookie } from "hono/cookie";
import { isIP } from "node:net";
import { bearer, unauthorized } from "../../routes/publish-auth.js";
import { normalizeAddress, type TrustedProxies } from "./trusted-proxies.js";

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

/**
 * The address of the TCP peer (normalized: `::ffff:1.2.3.4` is `1.2.3.4`). Undefined outside
 * Node, or when the connection closed before its address was read (the relay reads it as each
 * connection opens, so a request whose connection is gone still has it).
 */
export function peerAddress(c: Context): string | undefined {
  const addr = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket?.remoteAddress;
  return addr === undefined ? undefined : normalizeAddress(addr);
}

/** One `X-Forwarded-For` element as an address: `1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `"::1"`; undefined otherwise. */
function forwardedHop(raw: string): string | undefined {
  let h = raw.trim().replace(/^"(.*)"$/, "$1");
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (bracketed) h = bracketed[1];
  else if (/^[\d.]+:\d+$/.test(h)) h = h.slice(0, h.indexOf(":"));
  return isIP(h) ? normalizeAddress(h) : undefined;
}

/**
 * The client's address, the one every per-address rule uses (connection limit, anonymous
 * publish rate, the loopback rule). `X-Forwarded-For` counts only when the peer is a trusted
 * proxy, and then it is walked right to left (each proxy appends the address it saw) past
 * trusted hops: the first hop that is not a trusted proxy is the client. Anything left of it
 * was written by the client and is ignored, so a forged header changes nothing.
 */
export function remoteAddress(c: Context, proxies: TrustedProxies): string | undefined {
  let addr = peerAddress(c);
  if (addr === undefined || !proxies.has(addr)) return addr;
  const hops = (c.req.header("x-forwarded-for") ?? "").split(",");
  for (let i = hops.length - 1; i >= 0 && proxies.has(addr); i--) {
    const hop = forwardedHop(hops[i]);
    // An unreadable hop ends the walk at the proxy that wrote it: the last address known true.
    if (hop === undefined) break;
    addr = hop;
  }
  return addr;
}

export function isLoopback(addr: string | undefined): boolean {
  return addr === "::1" || (addr !== undefined && normalizeAddress(addr).startsWith("127."));
}

/**
 * Is this request from this machine? Both the peer and the client behind any trusted proxy
 * must be loopback: a local reverse proxy's public traffic is not local, and no header can
 * make a remote peer local.
 */
export function isLocalRequest(c: Context, proxies: TrustedProxies): boolean {
  return isLoopback(peerAddress(c)) && isLoopback(remoteAddress(c, proxies));
}
