import { afterAll, beforeAll } from "vitest";
import { RedisServer } from "./redis-server.js";
import { Redis } from "ioredis";

/**
 * The two broker modes every relay behaviour is proven in. The Redis mode starts a private
 * redis-server for the file (redis-server must be installed: apt-get install -y redis-server).
 */
export function brokerModes(): Array<{ name: string; env: () => Record<string, string>; redis: () => RedisServer | undefined }> {
  let server: RedisServer | undefined;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await server?.dispose();
  });
  let n = 0;
  return [
    { name: "memory broker", env: () => ({}), redis: () => undefined },
    // A fresh key prefix per relay keeps tests' logs apart on one server.
    { name: "redis broker", env: () => ({ REDIS_URL: server!.url, FANOUT_LOG_PREFIX: `t${n++}` }), redis: () => server },
  ];
}

/**
 * A private redis-server and a connected ioredis client for the file, started before all its
 * tests and disposed after them. Read `server` and `redis` inside tests (they exist from beforeAll).
 */
export function redisFixture(): { readonly server: RedisServer; readonly redis: Redis } {
  let server: RedisServer | undefined;
  let redis: Redis | undefined;
  beforeAll(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.dispose();
  });
  return {
    get server() {
      return server!;
    },
    get redis() {
      return redis!;
    },
  };
}
