import { Hono, type Context } from "hono";
import { FanoutError } from "../../protocol/errors.js";
import type { RelayContext } from "../relay-context.js";
import type { OpsAccess } from "../auth/relay-auth.js";
import type { Fleet, FleetView } from "../ops/fleet.js";
import { redactAlert, redactReport } from "../ops/relay-report.js";

/**
 * `/healthz` (process up), `/readyz` (broker reachable), `/metrics`, `/v1/stats`, `/v1/alerts`.
 *
 * Health and readiness stay open for load balancers. `/metrics` is counts only: its label
 * values come from fixed sets (subscription kind, publish result, reset reason, error code,
 * alert kind) plus the relay id, never from a channel, pattern, client or token, so it is
 * safe to scrape without a credential. `/v1/stats` and `/v1/alerts` name channels, patterns
 * and relays (host and pod names), which clients choose and which can carry secrets
 * (`user:7:reset-token-…`): those go only to callers `RelayAuth.authorizeOps` allows;
 * everyone else gets the counts.
 */
export function opsRoute(rc: RelayContext, fleet: Fleet): Hono {
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
  // The answers depend on the credential: no shared cache may hand one caller's to another.
  const private_ = (c: Context) => {
    c.header("Cache-Control", "no-store");
    c.header("Vary", "Authorization", { append: true });
  };
  app.get("/v1/stats", async (c) => {
    const scope = c.req.query("scope") ?? "relay";
    if (scope !== "relay" && scope !== "fleet") throw new FanoutError(400, "invalid_scope", `scope must be relay or fleet, got ${JSON.stringify(scope).slice(0, 80)}`);
    const access = await rc.auth.authorizeOps(c);
    private_(c);
    if (scope === "fleet") {
      return c.json(fleetStats(await fleet.view(), access));
    }
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
    if (access === "totals") return c.json(totals);
    return c.json({ ...totals, relay: fleet.id, channels, patterns, cursor: rc.hub.cursorString });
  });
  app.get("/v1/alerts", async (c) => {
    const access = await rc.auth.authorizeOps(c);
    private_(c);
    return c.json(fleetAlerts(await fleet.view(), access));
  });
  return app;
}

/** `/v1/stats?scope=fleet` as `access` may see it (the dashboard's stream sends the same). */
export function fleetStats(view: FleetView, access: OpsAccess) {
  return access === "names" ? { scope: "fleet" as const, ...view } : redactView(view);
}

/** `/v1/alerts` as `access` may see it (the dashboard's stream sends the same). */
export function fleetAlerts(view: FleetView, access: OpsAccess) {
  const body = { generatedAt: view.generatedAt, relays: view.relays.length, partial: view.partial };
  if (access === "names") return { ...body, self: view.self, alerts: view.alerts, omitted: omitted(view) };
  return { ...body, alerts: view.alerts.map(redactAlert), omitted: omitted(view) };
}

/** Counts without relay ids or channel names; relays keep their order (by id) so a poller can follow them. */
function redactView(v: FleetView) {
  return {
    scope: "fleet",
    generatedAt: v.generatedAt,
    heartbeatMs: v.heartbeatMs,
    ttlMs: v.ttlMs,
    partial: v.partial,
    relays: v.relays.map(redactReport),
    totals: v.totals,
    alerts: v.alerts.map(redactAlert),
  };
}

/** Channel alerts left out fleet-wide, per kind. */
function omitted(v: FleetView): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of v.relays) for (const [k, n] of Object.entries(r.alertsOmitted ?? {})) out[k] = (out[k] ?? 0) + (n ?? 0);
  return out;
}
