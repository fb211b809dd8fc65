import { Hono } from "hono";
import type { RelayContext } from "../relay-context.js";

/**
 * `/healthz` (process up), `/readyz` (broker reachable), `/metrics`, `/v1/stats`.
 *
 * Health and readiness stay open for load balancers. `/metrics` is counts only: its label
 * values come from fixed sets (subscription kind, publish result, reset reason, error code),
 * never from a channel, pattern, client or token, so it is safe to scrape without a
 * credential. `/v1/stats` names channels and patterns, which clients choose and which can
 * carry secrets (`user:7:reset-token-…`): those go only to callers `RelayAuth.authorizeOps`
 * allows; everyone else gets the totals.
 */
export function opsRoute(rc: RelayContext): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) => {
    const ready = rc.broker.isReady() && !rc.draining;
    return c.json({ status: ready ? "ready" : rc.draining ? "draining" : "broker_unreachable" }, ready ? 200 : 503);
  });
  app.get("/metrics", async (c) => {
    const body = await rc.metrics.registry.metrics();
    return c.body(body, 200, { "Content-Type": rc.metrics.registry.contentType });
  });
  app.get("/v1/stats", async (c) => {
    const access = await rc.auth.authorizeOps(c);
    const { channels, patterns } = rc.hub.stats();
    const get = async (name: string) => (await rc.metrics.registry.getSingleMetric(name)?.get())?.values.reduce((a, v) => a + v.value, 0) ?? 0;
    const uptime = (Date.now() - rc.startedAt) / 1000;
    const messagesIn = await get("fanout_messages_in_total");
    const messagesOut = await get("fanout_messages_out_total");
    const totals = {
      broker: rc.config.redisUrl ? "redis" : "memory",
      ready: rc.broker.isReady(),
      connections: rc.connections.size,
      subscriptions: { channels: Object.keys(channels).length, patterns: Object.keys(patterns).length },
      messages: { in: messagesIn, out: messagesOut, published: await get("fanout_published_total") },
      rates: rc.hub.rates.snapshot(),
      uptimeSeconds: Math.round(uptime),
    };
    // The answer depends on the credential: no shared cache may hand one caller's to another.
    c.header("Cache-Control", "no-store");
    c.header("Vary", "Authorization", { append: true });
    if (access === "totals") return c.json(totals);
    return c.json({ ...totals, channels, patterns, cursor: rc.hub.cursorString });
  });
  return app;
}
