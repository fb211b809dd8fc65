import { hmacMatches } from "../constant-time.js";
import { deployInvalidation, field } from "./hook-mapping.js";
import type { HookProvider } from "./hook-provider.js";

/**
 * Vercel webhooks: `x-vercel-signature: <hex HMAC-SHA1>` of the raw body. The body is
 * `{ id, type, payload: { deployment: { id, … } } }`; `id` identifies the delivery.
 */
export const vercelHook: HookProvider = {
  name: "vercel",
  async verify(c, raw, secret) {
    const sig = c.req.header("x-vercel-signature");
    if (!sig) return false;
    return hmacMatches("SHA-1", secret, raw, sig);
  },
  interpret(_c, body, mapping) {
    const event = field(body, "type") ?? "";
    const deliveryId = field(body, "id");
    if (!mapping.vercelEvents.includes(event)) {
      return { kind: "ignore", reason: `event ${JSON.stringify(event)} is not mapped`, deliveryId, event };
    }
    const deployId = field(body, "payload", "deployment", "id");
    return { kind: "invalidate", invalidation: deployInvalidation(mapping, deployId), deliveryId, event };
  },
};
