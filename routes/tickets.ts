import { Hono, type Context } from "hono";
import type { TicketLimit, TicketScope, Tickets } from "../protocol/auth/tickets.js";
import { readJson } from "./read-body.js";

export interface TicketsRouteDeps {
  tickets: Tickets;
  /** Throws 401 unless the request carries a credential that may mint tickets at all; runs before the body is read. */
  authenticate(c: Context): Promise<void>;
  /**
   * Throws 401/403/429 unless this caller may open `scope` (see `authorizeTicket` in
   * publish-auth.ts); returns what bounds the ticket (the minting token's `exp`).
   */
  authorize(c: Context, scope: TicketScope): Promise<TicketLimit>;
}

/** Ticket requests are small: a list of names. */
const MAX_TICKET_BODY = 64 * 1024;

/**
 * `POST /v1/tickets` `{ "channels": […], "patterns": […], "ttl": <seconds>? }` with a
 * publisher key or a JWT → `{ "ticket", "expiresIn" }`: open `GET /v1/events?ticket=…` once,
 * for those channels and patterns (or a subset), before it expires. Served by the relay and
 * by the edge functions; on one Redis, a ticket issued by either is redeemed by any relay.
 */
export function ticketsRoute(deps: TicketsRouteDeps): Hono {
  const app = new Hono();
  app.post("/v1/tickets", async (c) => {
    await deps.authenticate(c);
    const body = await readJson(c, MAX_TICKET_BODY);
    const { scope, ttlSeconds } = deps.tickets.parseRequest(body);
    const limit = await deps.authorize(c, scope);
    const issued = await deps.tickets.issue(scope, ttlSeconds, limit);
    c.header("Cache-Control", "no-store");
    return c.json(issued);
  });
  return app;
}
