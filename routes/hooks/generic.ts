import { hmacMatches } from "../constant-time.js";
import { parseInvalidation } from "../invalidation.js";
import type { HookProvider } from "./hook-provider.js";

/** Without a delivery header, an identical signed body this recent counts as a redelivery. */
const SAME_BODY_WINDOW_SECONDS = 600;

/**
 * The generic hook: the `/v1/invalidate` body, signed with
 * `X-Fanout-Signature: sha256=<hex HMAC-SHA256 of the raw body>` under `FANOUT_HOOK_SECRET`.
 * A delivery is named by `X-Fanout-Delivery` (or `Idempotency-Key`) and broadcast once per
 * name. Senders that name none are deduped on the signature itself, for ten minutes: a
 * retried delivery repeats the same signed body, while a deliberate repeat can wait, add a
 * nonce to the body, or name its delivery.
 */
export const genericHook: HookProvider = {
  name: "generic",
  async verify(c, raw, secret) {
    const sig = c.req.header("x-fanout-signature");
    if (!sig?.startsWith("sha256=")) return false;
    return hmacMatches("SHA-256", secret, raw, sig.slice(7));
  },
  interpret(c, body) {
    const invalidation = parseInvalidation(body);
    const named = c.req.header("x-fanout-delivery") || c.req.header("idempotency-key");
    if (named) return { kind: "invalidate", invalidation, deliveryId: named.slice(0, 200) };
    const sig = (c.req.header("x-fanout-signature") ?? "").slice(7).toLowerCase();
    return { kind: "invalidate", invalidation, deliveryId: `sig:${sig}`, deliveryTtlSeconds: SAME_BODY_WINDOW_SECONDS };
  },
};
