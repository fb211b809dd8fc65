import { readFileSync } from "node:fs";
import { Hono, type Context } from "hono";
import { FanoutError, unavailable } from "../../protocol/errors.js";
import type { RelayContext } from "../relay-context.js";
import type { Fleet, FleetView } from "../ops/fleet.js";
import type { OpsAccess } from "../auth/relay-auth.js";
import { encodeEvent } from "../sse/frame.js";
import { fleetAlerts, fleetStats } from "./ops.js";

const asset = (name: string) => readFileSync(new URL(`../public/${name}`, import.meta.url), "utf8");
const HTML = asset("dashboard.html");
const JS = asset("dashboard.js");
const CSS = asset("dashboard.css");

/** How often the stream sends a snapshot: the page's charts move once a second. */
const TICK_MS = 1000;
/**
 * Streams open at once. Each costs one write per second of a shared snapshot; the cap keeps
 * anonymous callers (who may open it for totals) from holding thousands.
 */
const MAX_STREAMS = 64;

/**
 * The page handles an operator key and shows names clients chose (channel names can be any
 * text): it renders them as text only, and this policy forbids any script but its own file,
 * inline or from elsewhere, and any connection but to this relay.
 */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** One snapshot as the stream sends it: what `/v1/stats?scope=fleet` and `/v1/alerts` answer the same caller. */
export function snapshot(view: FleetView, access: OpsAccess) {
  return { access, stats: fleetStats(view, access), alerts: fleetAlerts(view, access) };
}

interface Listener {
  access: OpsAccess;
  controller: ReadableStreamDefaultController<Uint8Array>;
  /**
   * Asks the auth again, on the request's own credential: a JWT that expires, or stops
   * verifying, ends the stream instead of streaming names for as long as the tab stays open.
   */
  reauthorize?: () => Promise<OpsAccess>;
}

/**
 * One timer for every open stream: the fleet view is built once per tick whoever watches, and
 * a tick a reader is still behind on is skipped for it (a snapshot replaces the last, so
 * nothing queues up behind a slow page). Ends every stream when the relay drains.
 */
class StatsFeed {
  private listeners = new Set<Listener>();
  private timer?: NodeJS.Timeout;
  private ticking = false;

  constructor(
    private readonly rc: RelayContext,
    private readonly fleet: Fleet,
  ) {}

  get size(): number {
    return this.listeners.size;
  }

  add(l: Listener): void {
    this.listeners.add(l);
    void this.send([l]);
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), TICK_MS);
      this.timer.unref();
    }
  }

  remove(l: Listener): void {
    this.listeners.delete(l);
    if (this.listeners.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private async tick(): Promise<void> {
    if (this.rc.draining) {
      for (const l of [...this.listeners]) this.end(l);
      return;
    }
    // A slow store read must not stack ticks.
    if (this.ticking) return;
    this.ticking = true;
    try {
      await Promise.all([...this.listeners].map((l) => this.recheck(l)));
      await this.send([...this.listeners].filter((l) => (l.controller.desiredSize ?? 0) > 0));
    } finally {
      this.ticking = false;
    }
  }

  private async recheck(l: Listener): Promise<void> {
    if (!l.reauthorize) return;
    // try/await, not .catch(): an embedder's RelayAuth may throw before returning a promise,
    // and a rejection out of the timer's tick would end the process.
    let access: OpsAccess | undefined;
    try {
      access = await l.reauthorize();
    } catch {
      access = undefined;
    }
    if (access !== l.access) this.end(l);
  }

  private end(l: Listener): void {
    this.remove(l);
    try {
      l.controller.close();
    } catch {
      // already cancelled by the client
    }
  }

  private async send(to: Listener[]): Promise<void> {
    if (to.length === 0) return;
    let view: FleetView;
    try {
      view = await this.fleet.view();
    } catch {
      return;
    }
    const frames = new Map<OpsAccess, Uint8Array>();
    for (const l of to) {
      if (!this.listeners.has(l)) continue;
      let frame = frames.get(l.access);
      if (!frame) {
        frame = encodeEvent({ event: "stats", data: JSON.stringify(snapshot(view, l.access)) });
        frames.set(l.access, frame);
      }
      try {
        l.controller.enqueue(frame);
      } catch {
        this.remove(l);
      }
    }
  }
}

/**
 * `/dashboard` (the page, open: it holds no data) and `/v1/stats/stream` (its data, protected
 * like `/v1/stats`). The stream reads the credential from `Authorization` only, never from the
 * URL (URLs end up in logs and history), so the page reads it with fetch(), not EventSource.
 */
export function dashboardRoute(rc: RelayContext, fleet: Fleet): Hono {
  const app = new Hono();
  const feed = new StatsFeed(rc, fleet);
  const page = (body: string, type: string) => (c: Context) =>
    c.body(body, 200, { "Content-Type": type, "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache" });
  app.get("/dashboard", page(HTML, "text/html; charset=utf-8"));
  app.get("/dashboard.js", page(JS, "text/javascript; charset=utf-8"));
  app.get("/dashboard.css", page(CSS, "text/css; charset=utf-8"));
  app.get("/v1/stats/stream", async (c) => {
    const access = await rc.auth.authorizeOps(c);
    // The codes and statuses a client of /v1/events already handles.
    if (rc.draining) throw unavailable("relay is shutting down; reconnect elsewhere", 1);
    if (feed.size >= MAX_STREAMS) throw new FanoutError(429, "too_many_connections", `at most ${MAX_STREAMS} stats streams may be open on a relay`, { "Retry-After": "5" });
    let listener: Listener | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const credential = c.req.header("Authorization") !== undefined;
        listener = { access, controller, reauthorize: credential ? () => rc.auth.authorizeOps(c) : undefined };
        feed.add(listener);
      },
      cancel() {
        if (listener) feed.remove(listener);
      },
    });
    return new Response(body, {
      headers: {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-store",
        Vary: "Authorization",
        "X-Accel-Buffering": "no",
      },
    });
  });
  return app;
}
