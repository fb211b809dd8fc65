import { hmacMatches } from "../constant-time.js";
import { deployInvalidation, field, latestTime } from "./hook-mapping.js";
import type { HookProvider } from "./hook-provider.js";

/**
 * Vercel webhooks: `x-vercel-signature: <hex HMAC-SHA1>` of the raw body. The body is
 * `{ id, type, createdAt, payload: { deployment: { id, … } } }`: `id` names the delivery
 * and `createdAt` dates it, both inside the signature.
 */
export const vercelHook: HookProvider = {
  name: "vercel",
  async verify(c, raw, secret) {
    const sig = c.req.header("x-vercel-signature");
    if (!sig) return false;
    return hmacMatches("SHA-1", secret, raw, sig);
  },
  interpret(c, body, mapping) {
    const event = field(body, "type") ?? "";
    if (!mapping.vercelEvents.includes(event)) return { kind: "ignore", reason: `event ${JSON.stringify(event)} is not mapped`, event };
    const id = field(body, "id");
    const key = id ? `id:${id}` : `sig:${(c.req.header("x-vercel-signature") ?? "").trim().toLowerCase()}`;
    const deployId = field(body, "payload", "deployment", "id");
    return { kind: "invalidate", invalidation: deployInvalidation(mapping, deployId), delivery: { key, at: latestTime(body, ["createdAt"]) }, event };
  },
};
