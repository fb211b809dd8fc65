import { FanoutError } from "../../protocol/errors.js";
import { hmacMatches, utf8 } from "../constant-time.js";
import { parseInvalidation } from "../invalidation.js";
import type { HookProvider } from "./hook-provider.js";

/** Unix seconds, as a sender writes them: digits only, so `t.body` splits one way. */
const TIMESTAMP = /^[0-9]{1,12}$/;

function signatureHex(header: string | undefined): string | undefined {
  return header?.startsWith("sha256=") ? header.slice(7).trim().toLowerCase() : undefined;
}

/**
 * The generic hook: the `/v1/invalidate` body, signed under `FANOUT_HOOK_SECRET` in one of
 * two ways.
 *
 * - Timestamped (recommended): `X-Fanout-Timestamp: <unix seconds>` and
 *   `X-Fanout-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`. Accepted
 *   within `FANOUT_HOOK_TOLERANCE` of this clock and deduplicated until then: a replay is
 *   a duplicate, and later stale (401). The same body may be sent again with a new timestamp.
 * - Body only: `X-Fanout-Signature: sha256=<hex HMAC-SHA256 of the raw body>`. Nothing
 *   signed says when, so the signed body is the delivery: broadcast once per
 *   `FANOUT_HOOK_DEDUPE_TTL`, and a captured delivery can be replayed once per that window.
 *   `FANOUT_HOOK_REQUIRE_TIMESTAMP=true` refuses this form.
 *
 * The two forms cannot stand in for each other: the timestamped one signs different bytes,
 * and a body is a JSON object, never `<digits>.<…>`. `X-Fanout-Delivery` is not signed and
 * does not name the delivery.
 */
export const genericHook: HookProvider = {
  name: "generic",
  async verify(c, raw, secret, policy) {
    const sig = signatureHex(c.req.header("x-fanout-signature"));
    if (sig === undefined) return false;
    const ts = c.req.header("x-fanout-timestamp");
    if (ts === undefined) {
      if (policy.requireTimestamp) {
        throw new FanoutError(401, "timestamp_required", "this hook accepts only timestamped signatures (X-Fanout-Timestamp; FANOUT_HOOK_REQUIRE_TIMESTAMP)");
      }
      return hmacMatches("SHA-256", secret, raw, sig);
    }
    if (!TIMESTAMP.test(ts)) return false;
    const prefix = utf8(`${ts}.`);
    const signed = new Uint8Array(prefix.byteLength + raw.byteLength);
    signed.set(prefix);
    signed.set(raw, prefix.byteLength);
    return hmacMatches("SHA-256", secret, signed, sig);
  },
  interpret(c, body, _mapping, policy) {
    const invalidation = parseInvalidation(body);
    const sig = signatureHex(c.req.header("x-fanout-signature")) ?? "";
    const ts = c.req.header("x-fanout-timestamp");
    if (ts === undefined) return { kind: "invalidate", invalidation, delivery: { key: `sig:${sig}` } };
    const at = Number(ts) * 1000;
    return {
      kind: "invalidate",
      invalidation,
      delivery: { key: `t:${ts}:${sig}`, at, windowSeconds: policy.toleranceSeconds, aheadSeconds: policy.toleranceSeconds },
    };
  },
};
