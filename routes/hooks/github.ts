import { hmacMatches } from "../constant-time.js";
import { deployInvalidation, field } from "./hook-mapping.js";
import type { HookProvider } from "./hook-provider.js";

/**
 * GitHub webhooks: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>` of the raw body, delivery
 * id in `X-GitHub-Delivery`, event name in `X-GitHub-Event`. Configure the webhook with
 * content type `application/json`.
 */
export const githubHook: HookProvider = {
  name: "github",
  async verify(c, raw, secret) {
    const sig = c.req.header("x-hub-signature-256");
    if (!sig?.startsWith("sha256=")) return false;
    return hmacMatches("SHA-256", secret, raw, sig.slice(7));
  },
  interpret(c, body, mapping) {
    const event = c.req.header("x-github-event") ?? "";
    const deliveryId = c.req.header("x-github-delivery") || undefined;
    const ignore = (reason: string) => ({ kind: "ignore" as const, reason, deliveryId, event });
    if (!mapping.githubEvents.includes(event)) return ignore(`event ${JSON.stringify(event)} is not mapped`);
    let deployId: string | undefined;
    if (event === "push") {
      deployId = field(body, "after");
    } else if (event === "deployment_status") {
      if (field(body, "deployment_status", "state") !== "success") return ignore("deployment not successful");
      deployId = field(body, "deployment", "sha") ?? field(body, "deployment", "id");
    } else if (event === "release") {
      if (field(body, "action") !== "published") return ignore("release not published");
      deployId = field(body, "release", "tag_name");
    }
    return { kind: "invalidate", invalidation: deployInvalidation(mapping, deployId), deliveryId, event };
  },
};
