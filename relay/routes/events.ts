import type { IncomingMessage, ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import { Hono, type Context } from "hono";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { FanoutError, unavailable } from "../../protocol/errors.js";
import { checkChannel } from "../../protocol/names.js";
import { formatCursor, parseCursor } from "../../protocol/cursor.js";
import { Client } from "../client.js";
import { remoteAddress } from "../auth/credentials.js";
import { checkCursor, replay, replayDropped, type ResetReason } from "../replay.js";
import { encodeEvent, encodeRetry } from "../sse/frame.js";
import { SseConnection } from "../sse/sse-connection.js";
import type { RelayContext } from "../relay-context.js";

type NodeEnv = { Bindings: { incoming: IncomingMessage; outgoing: ServerResponse } };

function readSubscriptions(c: Context, max: number): { channels: string[]; patterns: string[] } {
  const channels = [...new Set(c.req.queries("channel") ?? [])];
  const patterns = [...new Set(c.req.queries("pattern") ?? [])];
  if (channels.length + patterns.length === 0) {
    throw new FanoutError(400, "no_subscriptions", "give at least one channel= or pattern= parameter");
  }
  if (channels.length + patterns.length > max) {
    throw new FanoutError(400, "too_many_subscriptions", `at most ${max} channels and patterns per connection`);
  }
  channels.forEach((ch) => checkChannel(ch, "channel"));
  patterns.forEach((p) => checkChannel(p, "pattern"));
  return { channels, patterns };
}

/**
 * `GET /v1/events`: one SSE stream for any number of channels and patterns.
 *
 * Order on the wire: `retry:`, `event: ready` (only once every subscription is confirmed by
 * the broker), `event: reset` if the resume cursor could not be honoured, replayed history,
 * then live messages. The response is written to the Node socket directly: the hot path
 * queues shared Buffers, not Web Streams chunks.
 */
export function eventsRoute(rc: RelayContext): Hono<NodeEnv> {
  const app = new Hono<NodeEnv>();
  app.get("/v1/events", async (c) => {
    const { config, hub, broker, log, metrics } = rc;
    if (rc.draining) throw unavailable("relay is shutting down; reconnect elsewhere", 1);
    const { channels, patterns } = readSubscriptions(c, config.maxSubscriptionsPerConnection);
    rc.limits.checkPatterns(patterns);
    await rc.auth.authorizeSubscribe(c, channels, patterns);
    if (!broker.isReady() || !hub.initialized) throw unavailable("broker unreachable; retry shortly", 2);
    const release = rc.limits.acquireConnection(remoteAddress(c) ?? "?");

    const res = c.env.outgoing;
    const id = randomUUID();
    let client: Client | undefined;
    const limits = { hardBytes: config.queueMaxBytes, softBytes: config.queueSoftBytes, softMs: config.queueSoftSeconds * 1000, maxMessages: config.queueMaxMessages };
    const conn = new SseConnection(res, limits, rc.scheduler, rc.queues, (reason) => {
      if (reason === "hard" || reason === "soft" || reason === "budget") {
        metrics.slowDrops.inc();
        metrics.slowDropsByReason.inc({ reason });
      }
      if (client) hub.detach(client);
      rc.connections.delete(conn);
      metrics.connections.dec();
      release();
    });
    metrics.connections.inc();
    client = new Client(id, conn, channels, patterns, { logBytes: config.queueSoftBytes, maxBytes: config.queueMaxBytes });

    try {
      await hub.attach(client);
    } catch (err) {
      conn.cancel();
      throw err;
    }
    if (conn.closed) return RESPONSE_ALREADY_SENT;

    const resume = c.req.header("last-event-id") || c.req.query("lastEventId") || undefined;
    let reset: ResetReason | undefined;
    client.begin(hub.cursor);
    if (resume !== undefined) {
      const parsed = parseCursor(resume, broker.partitions);
      if (parsed.ok) client.begin(parsed.cursor);
      else reset = parsed.reason;
    }

    const headers: Record<string, string> = {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache, no-transform",
      "X-Accel-Buffering": "no",
    };
    c.res.headers.forEach((v, k) => {
      if (k.toLowerCase().startsWith("access-control-") || k.toLowerCase() === "vary") headers[k] = v;
    });
    conn.open(headers);
    // Heartbeats and drain reach a connection only once its headers are out.
    rc.connections.add(conn);
    conn.send(encodeRetry(config.retryMs));
    const resuming = resume !== undefined && reset === undefined;
    try {
      if (resuming) reset = await checkCursor(log, client, broker.partitions);
      conn.send(encodeEvent({ id: formatCursor(client.delivered), event: "ready", data: JSON.stringify({ connection: id, channels, patterns }) }));
      if (reset) sendReset(rc, conn, reset);
      if (resuming) {
        const r = await replay(log, client, broker.partitions, config.replayLimit, hub.cursor);
        metrics.replayed.inc(r.sent);
        if (r.reset) sendReset(rc, conn, r.reset);
      }
      // Live log messages dropped while held (a long replay, a slow reader) come from the log.
      const again = await replayDropped(log, client, broker.partitions, config.replayLimit, hub.cursor);
      metrics.replayed.inc(again.sent);
      if (again.reset) sendReset(rc, conn, again.reset);
      client.goLive(hub.cursor);
    } catch (err) {
      // The log became unreachable mid-setup: end the stream; the client resumes from its last id.
      console.warn("[fanout] stream setup failed:", (err as Error).message);
      conn.destroy("error");
    }
    return RESPONSE_ALREADY_SENT;
  });
  return app;
}

const RESET_TEXT: Record<ResetReason, string> = {
  retention: "some messages after your Last-Event-ID are older than the retention window and were dropped",
  unknown: "your Last-Event-ID is not from this log (Redis lost its data, or another deployment); continuing from now",
  malformed: "your Last-Event-ID could not be read; continuing from now",
  limit: "more messages were missed than a resume replays; continuing from now",
};

function sendReset(rc: RelayContext, conn: SseConnection, reason: ResetReason): void {
  rc.metrics.resets.inc({ reason });
  conn.send(encodeEvent({ event: "reset", data: JSON.stringify({ reason, message: RESET_TEXT[reason] }) }));
}
