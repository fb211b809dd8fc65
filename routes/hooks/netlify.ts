import { decodeJwt, jwtVerify } from "jose";
import { sha256, timingSafeEqual, fromHex, utf8 } from "../constant-time.js";
import { deployInvalidation, field, latestTime, timeOf } from "./hook-mapping.js";
import type { HookProvider } from "./hook-provider.js";

/**
 * Netlify deploy notifications: `X-Webhook-Signature` is a JWS (HS256 under the hook's
 * secret) with claims `{ "iss": "netlify", "sha256": "<hex sha256 of the raw body>" }`, so
 * the body is signed through its digest. Netlify sends no delivery id: a delivery is the
 * deploy id, its state and its publish/update time (a restored deploy is `ready` again,
 * later). It is dated by the JWS `iat` when Netlify sets one, else by the deploy's newest
 * of `updated_at` / `published_at` / `created_at`.
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
  interpret(c, body, mapping) {
    const state = field(body, "state") ?? "";
    const event = `deploy_${state}`;
    if (!mapping.netlifyStates.includes(state)) return { kind: "ignore", reason: `deploy state ${JSON.stringify(state)} is not mapped`, event };
    // verify() accepted this JWS, so its claims are the signed ones.
    const claims = decodeJwt(c.req.header("x-webhook-signature") ?? "");
    const deployId = field(body, "id");
    const when = field(body, "published_at") ?? field(body, "updated_at") ?? "";
    const key = deployId ? `${deployId}:${state}:${when}` : `sha256:${String(claims.sha256).toLowerCase()}`;
    const at = timeOf(claims.iat) ?? latestTime(body, ["updated_at"], ["published_at"], ["created_at"]);
    return { kind: "invalidate", invalidation: deployInvalidation(mapping, deployId), delivery: { key, at }, event };
  },
};
