import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { pathToFileURL } from "node:url";
import ioredis, { type Redis as RedisClient } from "ioredis";

// The module object is the Redis class at run time; the named export is undefined when this
// runs in the Workers pool's globalSetup, and the types under NodeNext see a namespace.
const IORedis = ioredis as unknown as typeof RedisClient;
type IORedis = RedisClient;

type Reply = Buffer | number | null | Reply[] | Error;

/**
 * An Upstash-REST-compatible server over a real Redis, for tests and for running the
 * functions locally without an Upstash account: `POST /` (one command), `/pipeline`,
 * `/multi-exec` (JSON arrays of commands), `/subscribe/<channel>` and
 * `/psubscribe/<pattern>` (SSE), Bearer token check, and the `Upstash-Encoding: base64`
 * response form (every string base64 at any depth, except a top-level "OK" status).
 */
export interface UpstashRestServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

function encode(v: Reply, b64: boolean, top = false): unknown {
  if (v === null || typeof v === "number") return v;
  if (Array.isArray(v)) return v.map((x) => encode(x, b64));
  if (v instanceof Error) return v.message;
  if (top && v.length === 2 && v.toString() === "OK") return "OK";
  return b64 ? v.toString("base64") : v.toString("utf8");
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

/** A Redis error reply (ERR, NOSCRIPT, WRONGTYPE, EXECABORT…), as opposed to a lost connection. */
function isReplyError(e: unknown): boolean {
  return e instanceof Error && e.name === "ReplyError";
}

function isCommand(c: unknown): c is (string | number)[] {
  return Array.isArray(c) && c.length > 0 && c.every((a) => typeof a === "string" || typeof a === "number");
}

function args(cmd: (string | number)[]): [string, ...(string | number)[]] {
  return [String(cmd[0]), ...cmd.slice(1)];
}

export async function startUpstashRestServer(opts: { redisUrl: string; token: string; port?: number; host?: string }): Promise<UpstashRestServer> {
  // RESP2: Upstash answers hashes and friends as flat arrays, as RESP2 does.
  const redisOpts = { protocol: 2 as const, maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true };
  const redis = new IORedis(opts.redisUrl, redisOpts);
  redis.on("error", () => undefined);
  await redis.connect().catch(() => undefined);
  const subscribers = new Set<IORedis>();

  async function subscribe(req: IncomingMessage, res: ServerResponse, kind: "subscribe" | "psubscribe", name: string): Promise<void> {
    const sub = new IORedis(opts.redisUrl, redisOpts);
    sub.on("error", () => undefined);
    subscribers.add(sub);
    const close = () => {
      subscribers.delete(sub);
      sub.disconnect();
    };
    req.on("close", close);
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    sub.on("message", (ch: string, msg: string) => res.write(`data: message,${ch},${msg}\n\n`));
    sub.on("pmessage", (p: string, ch: string, msg: string) => res.write(`data: pmessage,${p},${ch},${msg}\n\n`));
    try {
      await sub.connect();
      const n = kind === "subscribe" ? await sub.subscribe(name) : await sub.psubscribe(name);
      res.write(`data: ${kind},${name},${n}\n\n`);
    } catch (e) {
      res.end(`data: error,${(e as Error).message}\n\n`);
      close();
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.headers.authorization !== `Bearer ${opts.token}`) return send(res, 401, { error: "Unauthorized" });
    if (req.method !== "POST") return send(res, 405, { error: "only POST is supported" });
    const b64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const sub = /^\/(subscribe|psubscribe)\/(.+)$/.exec(path);
    if (sub) return subscribe(req, res, sub[1] as "subscribe" | "psubscribe", sub[2]);
    let body: unknown;
    try {
      body = await readBody(req);
    } catch {
      return send(res, 400, { error: "ERR body is not valid JSON" });
    }
    if (path === "/") {
      if (!isCommand(body)) return send(res, 400, { error: "ERR body must be a command array" });
      try {
        return send(res, 200, { result: encode((await redis.callBuffer(...args(body))) as Reply, b64, true) });
      } catch (e) {
        return send(res, isReplyError(e) ? 400 : 500, { error: (e as Error).message });
      }
    }
    if (path !== "/pipeline" && path !== "/multi-exec") return send(res, 404, { error: "ERR unknown path" });
    if (!Array.isArray(body) || !body.every(isCommand)) return send(res, 400, { error: "ERR body must be an array of commands" });
    const cmds = body as (string | number)[][];
    let replies: [Error | null, unknown][];
    try {
      if (path === "/pipeline") {
        replies = await Promise.all(
          cmds.map((c) => redis.callBuffer(...args(c)).then((r: unknown): [null, unknown] => [null, r], (e: Error): [Error, null] => [e, null])),
        );
      } else {
        const tx = redis.multi();
        for (const c of cmds) tx.callBuffer(...args(c));
        replies = ((await tx.exec()) ?? []) as [Error | null, unknown][];
      }
    } catch (e) {
      return send(res, isReplyError(e) ? 400 : 500, { error: (e as Error).message });
    }
    if (replies.length > 0 && replies.every(([e]) => e && !isReplyError(e))) {
      return send(res, 500, { error: replies[0][0]!.message });
    }
    send(res, 200, replies.map(([e, r]) => (e ? { error: e.message } : { result: encode(r as Reply, b64, true) })));
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      if (!res.headersSent) send(res, 500, { error: e.message });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of subscribers) s.disconnect();
      redis.disconnect();
    },
  };
}

// CLI: `REDIS_URL=redis://127.0.0.1:6379 npx tsx tools/upstash-rest-server.ts`
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const token = process.env.UPSTASH_REDIS_REST_TOKEN ?? "local-dev-token";
  const srv = await startUpstashRestServer({
    redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    token,
    port: Number(process.env.PORT ?? 8079),
    host: process.env.HOST ?? "127.0.0.1",
  });
  console.log(`Upstash REST on ${srv.url} → ${process.env.REDIS_URL ?? "redis://127.0.0.1:6379"}`);
  console.log(`UPSTASH_REDIS_REST_URL=${srv.url}\nUPSTASH_REDIS_REST_TOKEN=${token}`);
  const stop = () => void srv.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
