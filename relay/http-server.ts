import type { Server, ServerOptions, ServerResponse } from "node:http";
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
