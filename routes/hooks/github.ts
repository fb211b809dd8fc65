import { hmacMatches } from "../constant-time.js";
import { deployInvalidation, field, latestTime } from "./hook-mapping.js";
import type { HookAction, HookProvider } from "./hook-provider.js";

/**
 * GitHub webhooks: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>` of the raw body, event
 * name in `X-GitHub-Event`. Configure the webhook with content type `application/json`.
 *
 * GitHub signs the body and nothing else: `X-GitHub-Delivery` and `X-GitHub-Event` are
 * not covered, so a captured delivery can be replayed under a fresh delivery id or another
 * event name. Deliveries are therefore named by the body (a push by its ref and commits, a
 * deployment status or release by its id), dated by the body (`repository.pushed_at`,
 * `deployment_status.updated_at`, `release.published_at`), and must have the body of the
 * event they claim to be.
 */
export const githubHook: HookProvider = {
  name: "github",
  async verify(c, raw, secret) {
    const sig = c.req.header("x-hub-signature-256");
    if (!sig?.startsWith("sha256=")) return false;
    return hmacMatches("SHA-256", secret, raw, sig.slice(7));
  },
  interpret(c, body, mapping): HookAction {
    const event = c.req.header("x-github-event") ?? "";
    const ignore = (reason: string) => ({ kind: "ignore" as const, reason, event });
    if (!mapping.githubEvents.includes(event)) return ignore(`event ${JSON.stringify(event)} is not mapped`);
    let deployId: string | undefined;
    let key: string;
    let at: number | undefined;
    if (event === "push") {
      const ref = field(body, "ref");
      const after = field(body, "after");
      if (!ref || !after) return ignore("the body is not a push (no ref and after)");
      deployId = after;
      // `before` tells a push that returns a branch to an earlier commit from the first push of it.
      key = `push:${ref}:${field(body, "before") ?? ""}:${after}`;
      at = latestTime(body, ["repository", "pushed_at"]);
    } else if (event === "deployment_status") {
      const id = field(body, "deployment_status", "id");
      if (!id) return ignore("the body is not a deployment_status (no deployment_status.id)");
      if (field(body, "deployment_status", "state") !== "success") return ignore("deployment not successful");
      deployId = field(body, "deployment", "sha") ?? field(body, "deployment", "id");
      key = `deployment_status:${id}`;
      at = latestTime(body, ["deployment_status", "updated_at"], ["deployment_status", "created_at"]);
    } else if (event === "release") {
      const id = field(body, "release", "id");
      if (!id) return ignore("the body is not a release (no release.id)");
      if (field(body, "action") !== "published") return ignore("release not published");
      deployId = field(body, "release", "tag_name");
      key = `release:${id}:published`;
      at = latestTime(body, ["release", "published_at"]);
    } else {
      // Another configured event: its body is its only signed identity.
      key = `${event}:${(c.req.header("x-hub-signature-256") ?? "").slice(7).trim().toLowerCase()}`;
    }
    return { kind: "invalidate", invalidation: deployInvalidation(mapping, deployId), delivery: { key, at }, event };
  },
};
