import { hmacMatches } from "../constant-time.js";
import { parseInvalidation } from "../invalidation.js";
import type { HookProvider } from "./hook-provider.js";

/**
 * The generic hook: the `/v1/invalidate` body, signed with
 * `X-Fanout-Signature: sha256=<hex HMAC-SHA256 of the raw body>` under `FANOUT_HOOK_SECRET`.
 * An optional `X-Fanout-Delivery` header names the delivery for redelivery dedupe.
 */
export const genericHook: HookProvider = {
  name: "generic",
  async verify(c, raw, secret) {
    const sig = c.req.header("x-fanout-signature");
    if (!sig?.startsWith("sha256=")) return false;
    return hmacMatches("SHA-256", secret, raw, sig.slice(7));
  },
  interpret(c, body) {
    const deliveryId = c.req.header("x-fanout-delivery") || undefined;
    return { kind: "invalidate", invalidation: parseInvalidation(body), deliveryId };
  },
};
