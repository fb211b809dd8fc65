import type { IncomingMessage, ServerResponse } from "node:http";
import { Hono, type Context } from "hono";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { FanoutError, unavailable } from "../../protocol/errors.js";
import { checkChannel } from "../../protocol/names.js";
import { checkSubscribable } from "../../protocol/reserved-channels.js";
import { formatCursor, parseCursor } from "../../protocol/cursor.js";
import { Client } from "../client.js";
import { remoteAddress } from "../auth/credentials.js";
import { checkCursor, replay, replayDropped, type ResetReason } from "../replay.js";
import { encodeEvent, encodeRetry } from "../sse/frame.js";
import { SseConnection } from "../sse/sse-connection.js";
import { OpenStream } from "../open-stream.js";
import { responseSocket } from "../http-server.js";
import { acceptsGzip } from "../sse/gzip-stream.js";
import type { RelayContext } from "../relay-context.js";

type NodeEnv = { Bindings: { incoming: IncomingMessage; outgoing: ServerResponse } };

/**
 * Hono keeps a query value it cannot percent-decode as its raw text, so `channel=%ED%A0%80`
 * (a lone surrogate) would subscribe to the literal string `%ED%A0%80`: refuse it instead.
 */
function checkQueryEncoding(url: string): void {
  const q = url.indexOf("?");
  if (q < 0) return;
  for (const part of url.slice(q + 1).split("&")) {
    try {
      decodeURIComponent(part.replace(/\+/g, " "));
    } catch {
      throw new FanoutError(400, "invalid_encoding", "the query string is not valid percent-encoded UTF-8");
    }
  }
}

function readSubscriptions(c: Context, max: number, logPrefix: string): { channels: string[]; patterns: string[] } {
  checkQueryEncoding(c.req.url);
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
  checkSubscribable(channels, patterns, logPrefix);
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
    const { channels, patterns } = readSubscriptions(c, config.maxSubscriptionsPerConnection, config.log.prefix);
    rc.limits.checkPatterns(patterns);
    const grantEndsAt = await rc.auth.authorizeSubscribe(c, channels, patterns);
    const identity = rc.presence.enabled && rc.auth.identify ? await rc.auth.identify(c) : { sub: "" };
    if (!broker.isReady() || !hub.initialized) throw unavailable("broker unreachable; retry shortly", 2);
    // The slot is taken before any wait: streams pipelined behind one another count against
    // the limits while they wait, so one connection cannot park an unbounded number of them.
    const releaseSlot = rc.limits.acquireConnection(remoteAddress(c, config.trustedProxies) ?? "?");
    // The patterns' hold on the relay budget moves with the stream's set (dynamic subscriptions).
    let lease: { release: () => void };
    try {
      lease = { release: rc.limits.leasePatterns(patterns) };
    } catch (err) {
      releaseSlot();
      throw err;
    }
    const release = (): void => {
      releaseSlot();
      lease.release();
    };
    const res = c.env.outgoing;
    if (!(await responseSocket(c.env.incoming, res))) {
      release();
      return RESPONSE_ALREADY_SENT;
    }
    if (rc.draining) {
      release();
      throw unavailable("relay is shutting down; reconnect elsewhere", 1);
    }

    const id = rc.streams.newId();
    let client: Client | undefined;
    const limits = { hardBytes: config.queueMaxBytes, softBytes: config.queueSoftBytes, softMs: config.queueSoftSeconds * 1000, maxMessages: config.queueMaxMessages };
    const conn = new SseConnection(res, limits, rc.scheduler, rc.queues, (reason) => {
      if (reason === "hard" || reason === "soft" || reason === "budget") {
        metrics.slowDrops.inc();
        metrics.slowDropsByReason.inc({ reason });
      }
      if (client) {
        hub.detach(client);
        if (stream.live) void rc.presence.exit(id, client.channels);
      }
      rc.streams.delete(id);
      rc.connections.delete(conn);
      metrics.connections.dec();
      release();
    });
    metrics.connections.inc();
    client = new Client(id, conn, channels, patterns, { logBytes: config.queueSoftBytes, maxBytes: config.queueMaxBytes });
    let expiry: (endsAt: number) => void = () => undefined;
    const stream = new OpenStream(id, client, identity, lease, (endsAt) => expiry(endsAt));

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
    // Only the CORS middleware sets headers here; reading `c.res` makes Hono build a Response.
    if (config.corsOrigins.length > 0) {
      c.res.headers.forEach((v, k) => {
        if (k.toLowerCase().startsWith("access-control-") || k.toLowerCase() === "vary") headers[k.toLowerCase()] = v;
      });
    }
    if (config.compression === "gzip") {
      // The answer depends on Accept-Encoding whichever it is: caches must know.
      headers.vary = headers.vary ? `${headers.vary}, Accept-Encoding` : "Accept-Encoding";
      if (acceptsGzip(c.req.header("accept-encoding"))) {
        headers["Content-Encoding"] = "gzip";
        conn.useGzip();
      }
    }
    conn.open(headers);
    // Heartbeats and drain reach a connection only once its headers are out.
    rc.connections.add(conn);
    conn.send(encodeRetry(config.retryMs));
    if (config.streamExpiry) expiry = endAtExpiry(conn, grantEndsAt);
    const resuming = resume !== undefined && reset === undefined;
    if (!conn.closed) rc.streams.add(stream);
    try {
      if (resuming) reset = await checkCursor(log, client, broker.partitions);
      conn.send(encodeEvent({ id: formatCursor(client.delivered), event: "ready", data: JSON.stringify({ connection: id, channels, patterns, secret: stream.secret }) }));
      if (reset) sendReset(rc, conn, reset);
      if (resuming) {
        const r = await replay(log, client, broker.partitions, config.replayLimit, hub.cursor);
        metrics.replayed.inc(r.sent);
        if (r.reset) sendReset(rc, conn, r.reset);
      }
      // Live log messages dropped while held (a long replay, a slow reader) come from the log.
      if (client.droppedAny) {
        const again = await replayDropped(log, client, broker.partitions, config.replayLimit, hub.cursor);
        metrics.replayed.inc(again.sent);
        if (again.reset) sendReset(rc, conn, again.reset);
      }
      client.goLive(hub.cursor);
      // Members join once they receive the channel (so they also see their own join).
      if (!conn.closed) {
        stream.live = true;
        void rc.presence.enter(id, identity, client.channels);
      }
    } catch (err) {
      // The log became unreachable mid-setup: end the stream; the client resumes from its last id.
      console.warn("[fanout] stream setup failed:", (err as Error).message);
      conn.destroy("error");
    }
    stream.setupEnded();
    return RESPONSE_ALREADY_SENT;
  });
  return app;
}

/**
 * A stream lives no longer than the credential that opened it (as Centrifugo disconnects on
 * `exp`): at the grant's end it gets `event: expired` and ends cleanly after what is queued.
 * The client reconnects with a fresh credential and its last id, so nothing is lost. The
 * returned function brings the end forward (a name added later with a shorter-lived credential).
 */
function endAtExpiry(conn: SseConnection, endsAt: number | undefined): (endsAt: number) => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let watching = false;
  // setTimeout's delay is a 32-bit int (a longer one fires at once): a far `exp` is re-armed.
  const arm = (): void => {
    if (conn.closed || endsAt === undefined) return;
    const wait = endsAt - Date.now();
    timer = wait > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(expire, Math.max(0, wait));
    timer.unref();
  };
  const expire = (): void => {
    if (conn.closed) return;
    conn.send(encodeEvent({ event: "expired", data: JSON.stringify({ reason: "token_expired" }) }));
    conn.end();
  };
  // Timer and `close` listener only once there is an end: most grants have none (API keys,
  // tokens without `exp`), and an idle stream then holds neither.
  const start = (): void => {
    // A stream already closed needs no timer (and one whose `close` has passed would never clear it).
    if (conn.closed) return;
    if (!watching) {
      watching = true;
      conn.socket.once("close", () => clearTimeout(timer));
    }
    arm();
  };
  if (endsAt !== undefined) start();
  return (next) => {
    if (endsAt !== undefined && endsAt <= next) return;
    endsAt = next;
    clearTimeout(timer);
    start();
  };
}

const MAX_TIMER_MS = 2 ** 31 - 1;

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
