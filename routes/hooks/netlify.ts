import { jwtVerify } from "jose";
import { sha256, timingSafeEqual, fromHex, utf8 } from "../constant-time.js";
import { deployInvalidation, field } from "./hook-mapping.js";
import type { HookProvider } from "./hook-provider.js";

/**
 * Netlify deploy notifications: `X-Webhook-Signature` is a JWS (HS256 under the hook's
 * secret) with claims `{ "iss": "netlify", "sha256": "<hex sha256 of the raw body>" }`.
 * The body is the deploy object; Netlify sends no delivery header, so a delivery is the
 * deploy id and its state (one notification per state change).
 */
export const netlifyHook: HookProvider = {
  name: "netlify",
  async verify(c, raw, secret) {
    const jws = c.req.header("x-webhook-signature");
    if (!jws) return false;
    try {
      const { payload } = await jwtVerify(jws, utf8(secret), { algorithms: ["HS256"], issuer: "netlify" });
      const claimed = typeof payload.sha256 === "string" ? fromHex(payload.sha256) : undefined;
      return claimed !== undefined && timingSafeEqual(claimed, await sha256(raw));
    } catch {
      return false;
    }
  },
  interpret(_c, body, mapping) {
    const state = field(body, "state") ?? "";
    const deployId = field(body, "id");
    const deliveryId = deployId ? `${deployId}:${state}` : undefined;
    const event = `deploy_${state}`;
    if (!mapping.netlifyStates.includes(state)) {
      return { kind: "ignore", reason: `deploy state ${JSON.stringify(state)} is not mapped`, deliveryId, event };
    }
    return { kind: "invalidate", invalidation: deployInvalidation(mapping, deployId), deliveryId, event };
  },
};
