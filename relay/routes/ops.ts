import { Hono } from "hono";
import type { RelayContext } from "../relay-context.js";

/** `/healthz` (process up), `/readyz` (broker reachable), `/metrics`, `/v1/stats`. */
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
    const { channels, patterns } = rc.hub.stats();
    const get = async (name: string) => (await rc.metrics.registry.getSingleMetric(name)?.get())?.values.reduce((a, v) => a + v.value, 0) ?? 0;
    const uptime = (Date.now() - rc.startedAt) / 1000;
    const messagesIn = await get("fanout_messages_in_total");
    const messagesOut = await get("fanout_messages_out_total");
    return c.json({
      broker: rc.config.redisUrl ? "redis" : "memory",
      ready: rc.broker.isReady(),
      connections: rc.connections.size,
      channels,
      patterns,
      messages: { in: messagesIn, out: messagesOut, published: await get("fanout_published_total") },
      rates: rc.hub.rates.snapshot(),
      cursor: rc.hub.cursorString,
      uptimeSeconds: Math.round(uptime),
    });
  });
  return app;
}
