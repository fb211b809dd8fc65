import { Hono, type Context } from "hono";
import type { PublishMessage } from "../protocol/publish-request.js";
import type { Publisher } from "../protocol/publisher.js";
import type { InvalidationStore } from "./invalidation-store.js";
import { invalidationMessage, parseInvalidation, runInvalidation } from "./invalidation.js";
import { readJson } from "./read-body.js";

export interface InvalidateRouteDeps {
  publisher: Publisher;
  store: InvalidationStore;
  maxBodyBytes: number;
  /** Throws 401 unless the request carries a valid publisher credential; runs before the body is read. */
  authenticate(c: Context): Promise<void>;
  /** The publish check, applied to the broadcast on `invalidate:<scope>`. */
  authorizePublish(c: Context, messages: PublishMessage[]): Promise<void>;
}

/**
 * `POST /v1/invalidate` `{ keys?, tags?, paths?, scope?, deployId? }` → `{ id, receivers, deleted }`.
 * Authorized as a publish to `invalidate:<scope>`, before anything is deleted.
 */
export function invalidateRoute(deps: InvalidateRouteDeps): Hono {
  const app = new Hono();
  app.post("/v1/invalidate", async (c) => {
    await deps.authenticate(c);
    const body = await readJson(c, deps.maxBodyBytes);
    const inv = parseInvalidation(body);
    await deps.authorizePublish(c, [invalidationMessage(inv, { source: "api" })]);
    const out = await runInvalidation(deps, inv, { source: "api" });
    return c.json({ id: out.id, receivers: out.receivers, deleted: out.deleted });
  });
  return app;
}
