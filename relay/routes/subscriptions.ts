import { Hono } from "hono";
import { readJson } from "../../routes/read-body.js";
import { parseSubscriptionChange } from "../subscription-change.js";
import type { RelayContext } from "../relay-context.js";

/**
 * `POST /v1/connections/<id>/subscriptions`: adds and removes channels and patterns on an open
 * stream. The body carries the connection's secret (from its `ready` event); the added names
 * are authorized exactly as a new stream's, by the same call, with this request's credential
 * (token, ticket or none). Answers once the change is live and `event: subscribed` is queued
 * on the stream, on whichever relay of the deployment holds it.
 */
export function subscriptionsRoute(rc: RelayContext): Hono {
  const app = new Hono();
  app.post("/v1/connections/:id/subscriptions", async (c) => {
    const { config } = rc;
    const body = await readJson(c, config.maxBodyBytes);
    // Checked here too, so a bad request is refused before any authorization work.
    const change = parseSubscriptionChange(body, { maxSubscriptions: config.maxSubscriptionsPerConnection, partitions: rc.broker.partitions, logPrefix: config.log.prefix });
    rc.limits.checkPatterns(change.add.patterns);
    const adding = change.add.channels.length + change.add.patterns.length > 0;
    const grantEndsAt = adding ? await rc.auth.authorizeSubscribe(c, change.add.channels, change.add.patterns) : undefined;
    // The owner relay validates the body again: it trusts no other relay with its stream.
    return c.json(await rc.streams.apply(rc, c.req.param("id"), { ...(body as object), request: change.request }, grantEndsAt));
  });
  return app;
}
