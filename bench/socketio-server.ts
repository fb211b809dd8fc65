/**
 * The Socket.IO peer of the bench (target `socketio-redis`): what a Node developer would run
 * instead of the relay — Socket.IO 4.8, websocket transport only, the Redis adapter, rooms as
 * channels. Publishers are `@socket.io/redis-emitter` processes (bench/socketio-pub-worker.ts),
 * so every emit reaches this server through Redis, like a publish reaches relay-redis.
 *
 * A client names its channels in the handshake (`auth: {channels: [...]}`), is joined to
 * those rooms on connection and told `ready` (the relay's `event: ready`): one round trip,
 * no per-client state beyond what Socket.IO keeps. Started by bench/targets.ts, never by hand.
 */
import { createServer } from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { Server } from "socket.io";

const port = Number(process.env.PORT);
const redisUrl = process.env.REDIS_URL;
if (!port || !redisUrl) throw new Error("PORT and REDIS_URL are required");

const pubClient = new Redis(redisUrl);
const subClient = pubClient.duplicate();
const http = createServer();
const io = new Server(http, {
  transports: ["websocket"],
  serveClient: false,
  adapter: createAdapter(pubClient, subClient),
});

io.on("connection", (socket) => {
  const channels = (socket.handshake.auth as { channels?: unknown }).channels;
  if (Array.isArray(channels)) for (const c of channels) if (typeof c === "string") void socket.join(c);
  socket.emit("ready");
});

// Listen only once the adapter's subscriptions are in place: an emit sent after the port opens
// is then never missed.
await Promise.all([pubClient.ping(), subClient.ping()]);
http.listen(port, "127.0.0.1", () => console.log(`socket.io on ${port}`));

const stop = (): void => {
  io.close();
  pubClient.disconnect();
  subClient.disconnect();
  setTimeout(() => process.exit(0), 200).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
