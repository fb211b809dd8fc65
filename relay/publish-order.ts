import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Context, MiddlewareHandler } from "hono";

type NodeBindings = { Bindings: { incoming?: IncomingMessage; outgoing?: ServerResponse } };

/** A publish request's place in its connection's order: taken once the broker has its messages, or once it ends. */
interface Turn {
  placed: boolean;
  /** Publishes behind it on the connection, waiting for it to be placed (made only when one waits). */
  waiters?: Array<() => void>;
}

/** A connection with publishes under way. */
interface Connection {
  /** Its latest publish's turn. */
  last: Turn;
  /** Its publishes under way (read, not yet answered). */
  outstanding: number;
  /** Reading stopped by this module (which must then resume it). */
  paused: boolean;
}

const connections = new WeakMap<Socket, Connection>();
/** Per publish request under way: its own turn, and the one before it on its connection (if not placed yet). */
const turns = new WeakMap<IncomingMessage, { own: Turn; before?: Turn }>();

/**
 * Publishes under way on one connection at which the relay stops reading from it, and below
 * which it reads again: a client pipelining faster than its publishes complete is held by TCP
 * instead of by the relay's memory. None of them waits on a later one, so the request whose
 * bytes are held back (the last) blocks nothing.
 */
const PAUSE_AT = 32;
const RESUME_BELOW = 8;

/**
 * Publishes pipelined on one connection are logged in the order they were sent; mounted on
 * `POST /v1/publish`. Node hands pipelined requests to the app as fast as it parses them and
 * each is handled at once, so a publish behind one that takes longer (a JWT to verify, a
 * longer body) would otherwise reach the broker first: answered in order, delivered out of
 * order.
 *
 * Each publish request takes a turn here, in arrival order, and is handled at once as before
 * (its body is read while the connection is there: waiting for the turn before reading would
 * lose what a client pipelines and then leaves, since Node discards a request's body with its
 * connection); only its call to the broker waits (`publishTurn`) until the publish before it
 * has placed its messages (`publishPlaced`, called right after the broker call: a relay
 * broker takes a call's place in the order when the call is made) or has ended. So pipelined
 * publishes still go to Redis together (group commit). With one request at a time on a
 * connection (the common case) nothing waits.
 */
export const publishesInOrder: MiddlewareHandler<NodeBindings> = (c, next) => {
  const req = c.env?.incoming;
  const socket = req?.socket;
  if (!req || !socket || c.req.method !== "POST") return next();
  const own: Turn = { placed: false };
  let conn = connections.get(socket);
  const before = conn && !conn.last.placed ? conn.last : undefined;
  if (conn) conn.last = own;
  else connections.set(socket, (conn = { last: own, outstanding: 0, paused: false }));
  turns.set(req, { own, before });
  const at = conn;
  if (++at.outstanding >= PAUSE_AT && !at.paused) {
    at.paused = true;
    socket.pause();
  }
  const end = (): void => {
    place(req);
    if (--at.outstanding === 0) connections.delete(socket);
    if (at.paused && at.outstanding < RESUME_BELOW) {
      at.paused = false;
      socket.resume();
    }
  };
  return next().then(end, (err: unknown) => {
    end();
    throw err;
  });
};

/** Marks `req`'s turn placed (once) and wakes the publish waiting behind it. */
function place(req: IncomingMessage): void {
  const t = turns.get(req);
  if (!t || t.own.placed) return;
  t.own.placed = true;
  for (const wake of t.own.waiters ?? []) wake();
}

/**
 * Resolves once the publish sent before this one on its connection has placed its messages
 * (see `publishesInOrder`); undefined when there is nothing to wait for (the common case, and
 * Workers).
 */
export function publishTurn(c: Context): Promise<void> | undefined {
  const req = (c.env as NodeBindings["Bindings"] | undefined)?.incoming;
  const before = req && turns.get(req)?.before;
  if (!before || before.placed) return undefined;
  return new Promise<void>((resolve) => (before.waiters ??= []).push(resolve));
}

/** This publish has its place in the broker's order: the one behind it may take its own. A no-op elsewhere (Workers). */
export function publishPlaced(c: Context): void {
  const req = (c.env as NodeBindings["Bindings"] | undefined)?.incoming;
  if (req) place(req);
}
