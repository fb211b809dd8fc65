import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { RedisServer } from "../../test/support/redis-server.js";
import { RedisBroker } from "./redis-broker.js";

const quiet = { deliver: () => undefined, down: () => undefined, recovered: () => undefined, fault: () => undefined };

/**
 * A Redis that stops answering for longer than the settle marker's timeout (a long script, a
 * fork stall, CLIENT PAUSE) fails the settle; the marker's timer firing while the script call
 * is still pending must not become an unhandled rejection, which would end the relay.
 */
describe("a settle while Redis stalls", () => {
  let server: RedisServer;
  let cli: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    cli = new Redis(server.port, "127.0.0.1");
  });
  afterAll(async () => {
    cli.disconnect();
    await server.dispose();
  });

  it("rejects to its caller and nothing else", async () => {
    const b = new RedisBroker(server.url, { prefix: "stall", partitions: 2, maxLen: 100, ttlMs: 0, dedupeSeconds: 60 });
    await b.start(quiet);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      await cli.call("CLIENT", "PAUSE", "3000", "ALL");
      await expect(b.settled()).rejects.toThrow(/settle marker did not arrive/);
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
      await b.close();
    }
  }, 15_000);
});
