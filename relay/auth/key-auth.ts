import type { Context } from "hono";
import type { IncomingMessage } from "node:http";
import { timingSafeEqual } from "node:crypto";
import { FanoutError } from "../../protocol/errors.js";
import type { RelayAuth } from "./relay-auth.js";

function isLoopback(addr: string | undefined): boolean {
  return addr === "127.0.0.1" || addr === "::1" || addr === "::ffff:127.0.0.1" || (addr?.startsWith("127.") ?? false);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Static publisher keys (`FANOUT_PUBLISH_KEYS`). With no key configured, publishing is open
 * to loopback clients only — convenient for `npm start` and curl, never for a network.
 * Subscribing is open.
 */
export class KeyAuth implements RelayAuth {
  constructor(private readonly keys: string[]) {
    if (keys.length === 0) console.warn("[fanout] FANOUT_PUBLISH_KEYS is not set: publishing is accepted from loopback clients only");
  }

  async authorizePublish(c: Context): Promise<void> {
    if (this.keys.length === 0) {
      const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
      if (isLoopback(incoming?.socket.remoteAddress)) return;
      throw new FanoutError(401, "unauthorized", "publishing needs a key (FANOUT_PUBLISH_KEYS is not set: loopback only)");
    }
    const auth = c.req.header("authorization") ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(auth);
    if (!m) throw new FanoutError(401, "unauthorized", "missing Authorization: Bearer <key>");
    if (!this.keys.some((k) => safeEqual(k, m[1].trim()))) throw new FanoutError(401, "unauthorized", "unknown publisher key");
  }

  async authorizeSubscribe(): Promise<void> {}
}
