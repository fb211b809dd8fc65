import type { IncomingMessage, ServerResponse } from "node:http";
import { Context } from "hono";
import { handlePublish, type PublishRouteDeps } from "../routes/publish.js";

/**
 * The part of a Web `Request` the publish handler reads through its Context: headers (joined
 * as `Headers` joins repeated fields, from the raw header list), method and URL. Everything
 * else (the body included) is read from `c.env.incoming`, the Node request, as under
 * @hono/node-server.
 */
class NodeRequestView {
  readonly headers: { get(name: string): string | null; has(name: string): boolean };
  constructor(private readonly incoming: IncomingMessage) {
    const raw = incoming.rawHeaders;
    const get = (name: string): string | null => {
      const lower = name.toLowerCase();
      const sep = lower === "cookie" ? "; " : ", ";
      let value: string | null = null;
      for (let i = 0; i < raw.length; i += 2) {
        if (raw[i].length === lower.length && raw[i].toLowerCase() === lower) {
          const v = raw[i + 1].trim();
          value = value === null ? v : value + sep + v;
        }
      }
      return value;
    };
    this.headers = { get, has: (name) => get(name) !== null };
  }

  get method(): string {
    return this.incoming.method ?? "GET";
  }

  get url(): string {
    return `http://${this.incoming.headers.host ?? "localhost"}${this.incoming.url ?? "/"}`;
  }
}

/** After the answer, what is left of a body is read and dropped for at most this long or this much, then the connection is closed (as @hono/node-server does). */
const DRAIN_MS = 500;
const DRAIN_BYTES = 64 * 1024 * 1024;

function discardRest(incoming: IncomingMessage): void {
  if (incoming.readableEnded || incoming.destroyed) return;
  let bytes = 0;
  const done = (): void => {
    clearTimeout(timer);
    incoming.off("data", onData);
    incoming.off("end", done);
    incoming.off("error", done);
  };
  const close = (): void => {
    done();
    incoming.socket?.destroySoon();
  };
  const onData = (chunk: Buffer): void => {
    bytes += chunk.length;
    if (bytes > DRAIN_BYTES) close();
  };
  const timer = setTimeout(close, DRAIN_MS);
  timer.unref();
  incoming.on("data", onData);
  incoming.on("end", done);
  incoming.on("error", done);
  incoming.resume();
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer): void {
  if (res.headersSent || res.destroyed) return;
  headers["Content-Length"] = String(body.length);
  res.writeHead(status, headers);
  res.end(body);
}

/**
 * `POST /v1/publish` handled straight on `node:http`, without the Web `Request`/`Response`
 * objects and routing of the Hono path: about a quarter of the relay's CPU per publish. It
 * runs the same handler (`handlePublish`: auth, body limits, validation, publish, metrics) on
 * a Context over the Node request, and maps errors with the same `onError` as the app.
 *
 * Only for the exact path (no query string) and method; the relay uses it only when nothing
 * else must see the request (no CORS middleware, its own auth), and everything else goes to
 * the Hono app. Returns whether it took the request.
 */
export function publishFastPath(deps: PublishRouteDeps, onError: (err: unknown, c: Context) => Response): (incoming: IncomingMessage, res: ServerResponse) => boolean {
  return (incoming, res) => {
    if (incoming.method !== "POST" || incoming.url !== "/v1/publish") return false;
    const c = new Context(new NodeRequestView(incoming) as unknown as Request, { env: { incoming, outgoing: res } });
    res.once("finish", () => discardRest(incoming));
    handlePublish(c, deps)
      .then(
        (answer) => send(res, 200, { "Content-Type": "application/json" }, Buffer.from(JSON.stringify(answer))),
        async (err: unknown) => {
          const r = onError(err, c);
          const headers: Record<string, string> = {};
          r.headers.forEach((v, k) => (headers[k] = v));
          send(res, r.status, headers, Buffer.from(await r.arrayBuffer()));
        },
      )
      .catch((err: unknown) => {
        console.error("[fanout] publish fast path:", err);
        if (!res.headersSent) send(res, 500, { "Content-Type": "application/json" }, Buffer.from('{"error":{"code":"internal","message":"internal error"}}'));
        else res.destroy();
      });
    return true;
  };
}
