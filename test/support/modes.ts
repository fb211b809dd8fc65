import { afterAll, beforeAll } from "vitest";
import { RedisServer } from "./redis-server.js";

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
