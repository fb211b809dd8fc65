import { createRequire } from "node:module";
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { RelayConfig } from "./config.js";

/**
 * Timeouts for receiving requests. Node's `requestTimeout` and `headersTimeout` run from a
 * request's first byte until the request (headers and body) is received: a stream's GET is
 * complete once its headers are in, so they bound slow headers and slow bodies (slowloris)
 * and never a long-lived response. Expiry is checked every `connectionsCheckingInterval`
 * (Node's default, 30 s, would let a slow body live 40 s). Idle keep-alive connections are
 * closed by Node's `keepAliveTimeout` (5 s, left as is).
 */
export function serverOptions(config: RelayConfig): ServerOptions {
  return {
    requestTimeout: config.requestTimeoutMs,
    headersTimeout: config.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.floor(config.requestTimeoutMs / 2)),
  };
}

const STATUS: Record<number, string> = { 400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large" };

function clientErrorReply(code: string | undefined): { status: number; code: string; message: string } {
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") return { status: 408, code: "request_timeout", message: "the request was not received in time (FANOUT_REQUEST_TIMEOUT_MS)" };
  if (code === "HPE_HEADER_OVERFLOW") return { status: 431, code: "headers_too_large", message: "request headers are too large" };
  return { status: 400, code: "bad_request", message: "malformed HTTP request" };
}

/**
 * Connection-level hardening of the relay's HTTP server.
 *
 * - Each connection's peer address is read as it opens: Node reads it lazily and a closed
 *   socket no longer has one, so a request still queued (pipelined) when its connection
 *   closes would otherwise have no address to be limited by.
 * - Requests Node refuses before any route sees them (malformed, timed out, oversized
 *   headers) get the API's JSON error shape with a code, like every other refusal, unless a
 *   response is already under way on that connection (then the connection is just closed).
 */
export function hardenServer(server: Server, onRefused: (code: string) => void): void {
  server.on("connection", (socket: Socket) => {
    void socket.remoteAddress;
  });
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    // Node's own handler makes the same check through the same private field.
    const inFlight = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const reply = clientErrorReply(err.code);
    onRefused(reply.code);
    const body = JSON.stringify({ error: { code: reply.code, message: reply.message } });
    socket.end(
      `HTTP/1.1 ${reply.status} ${STATUS[reply.status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      () => socket.destroy(),
    );
    // end() leaves a half-open socket whose peer may never close: bound it.
    setTimeout(() => socket.destroy(), 1000).unref();
  });
}

/** What `node:http` installs on each connection it parses (Node 20–22), by listener name. */
const HTTP_SOCKET_LISTENERS: ReadonlyArray<readonly [string, string]> = [
  ["data", "bound socketOnData"],
  ["end", "bound socketOnEnd"],
  ["close", "bound socketOnClose"],
  ["drain", "bound socketOnDrain"],
  ["error", "socketOnError"],
  ["timeout", "socketOnTimeout"],
  ["resume", "onSocketResume"],
  ["pause", "onSocketPause"],
];

/** Per-connection overrides `node:http` sets on the socket (its own properties, closures over the parser). */
const HTTP_SOCKET_OVERRIDES = ["on", "addListener", "prependListener", "setEncoding"] as const;

type FreeParser = (parser: unknown, req: unknown, socket: unknown) => void;
// Node's own helper for taking a connection away from its HTTP parser (what an `upgrade` does).
const { freeParser } = createRequire(import.meta.url)("_http_common") as { freeParser: FreeParser };

/**
 * Takes a connection away from `node:http` once a response's head is on it, as Node does for
 * an `upgrade`: the parser goes back to Node's pool, the server's listeners and per-socket
 * overrides come off the socket, and the request and response objects are no longer
 * referenced, so a long-lived stream keeps only its socket (~2 KB less per idle stream).
 * From then on the caller owns the socket: it must listen for `error` and `close`, read (or
 * discard) what the peer sends, and end or destroy it.
 *
 * False, and nothing changed, when the connection does not look as expected (another Node
 * version): the response then stays with `node:http` as before.
 */
export function detachFromHttp(res: ServerResponse): boolean {
  const socket = res.socket as (Socket & { parser?: unknown; _httpMessage?: unknown }) | null;
  if (!socket || socket.destroyed || socket._httpMessage !== res || !res.headersSent || !socket.parser) return false;
  const found = HTTP_SOCKET_LISTENERS.map(([event, name]) => [event, socket.listeners(event).find((f) => f.name === name)] as const);
  if (found.some(([, f]) => f === undefined) || HTTP_SOCKET_OVERRIDES.some((k) => !Object.hasOwn(socket, k))) return false;
  for (const [event, f] of found) socket.removeListener(event, f as (...args: unknown[]) => void);
  // Back to the shared methods (a `delete` would turn the socket into a dictionary-mode object, 1.6 KB).
  const proto = Object.getPrototypeOf(socket) as Record<string, unknown>;
  for (const k of HTTP_SOCKET_OVERRIDES) (socket as unknown as Record<string, unknown>)[k] = proto[k];
  // The parser is freed on the next turn, not now: this can run while the parser is still
  // working through bytes it was handed (the route's promise chain may complete in the tick
  // queue Node drains after a parser callback), and a parser freed mid-run goes on to the
  // next pipelined request with no `onIncoming`, a TypeError that ends the process (found by
  // the wire fuzz). Until then a request completed from those bytes is dropped unanswered,
  // as everything the client sends on a stream is.
  const parser = socket.parser as { onIncoming: unknown };
  parser.onIncoming = dropIncoming;
  setImmediate(freeParserLater, parser, res.req, socket);
  res.detachSocket(socket);
  return true;
}

/** Stands in for `node:http`'s request handler on a parser about to be freed (see `detachFromHttp`). */
function dropIncoming(req: { upgrade?: boolean }): number {
  // Never an upgrade either: without this the parser would hand the socket to the server's
  // upgrade handling (as node:http does when it has no upgrade listener).
  req.upgrade = false;
  return 0;
}

function freeParserLater(parser: unknown, req: unknown, socket: { parser?: unknown }): void {
  if (socket.parser !== parser) return;
  try {
    freeParser(parser, req, socket);
  } catch {
    // Node internals differing from what this expects: the parser is then not reused, and is
    // collected with its socket. Never worth ending the process (this runs from setImmediate).
  }
}

/**
 * The socket this response will be written to, once it is this response's turn. A request
 * pipelined behind another on one keep-alive connection is handed to the app at once, but its
 * response gets a socket only when the responses before it have ended (Node emits `socket`
 * on it then). Undefined when the connection is closed, or closes first: the client may
 * leave while its request waits, and a stream set up on a closed socket would never see the
 * `close` that frees its slot.
 */
export function responseSocket(req: IncomingMessage, res: ServerResponse): Promise<Socket | undefined> {
  if (res.socket) return Promise.resolve(res.socket.destroyed ? undefined : res.socket);
  return new Promise((resolve) => {
    const conn = req.socket;
    const done = () => {
      res.off("socket", done);
      req.off("close", done);
      conn?.off("close", done);
      resolve(res.socket && !res.socket.destroyed ? res.socket : undefined);
    };
    res.on("socket", done);
    req.on("close", done);
    conn?.on("close", done);
    if (!conn || conn.destroyed) done();
  });
}
