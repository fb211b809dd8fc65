/**
 * The `node-floor` reference of scenario (p): a bare `node:http` server (keep-alive) that reads
 * each POST body, parses it and answers what the relay answers to a publish —
 * `{"id":…,"channel":…,"receivers":0,"duplicate":false}` — with no routing, validation, auth or
 * broker. What any Node HTTP publish endpoint pays on this machine: relay µs/pub minus this is
 * what the relay's own publish path costs. Started by bench/targets.ts, never by hand.
 */
import { createServer } from "node:http";

const port = Number(process.env.PORT);
if (!port) throw new Error("PORT is required");

let seq = 0;
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    let channel: unknown;
    try {
      channel = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { channel?: unknown }).channel;
    } catch {
      /* answered 400 below */
    }
    if (typeof channel !== "string") {
      res.writeHead(400, { "content-type": "application/json" }).end('{"error":"bad_request"}');
      return;
    }
    const body = JSON.stringify({ id: `${++seq}-${Date.now()}-0`, channel, receivers: 0, duplicate: false });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1", () => console.log(`node-floor on ${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)).closeAllConnections());
