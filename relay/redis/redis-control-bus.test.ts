import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { RedisServer } from "../../test/support/redis-server.js";

/**
 * The control channel (`<prefix>:relay:ctl:<relay id>`) is reachable by any program with
 * Redis access: whatever arrives there costs that message only, and a well-formed request
 * still gets its answer afterwards.
 */
describe("the Redis control channel", () => {
  let server: RedisServer;
  let r: RunningRelay;
  let pub: Redis;
  let sub: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    r = await startRelay({ REDIS_URL: server.url, FANOUT_LOG_PREFIX: "ctlt", FANOUT_RELAY_ID: "r1" });
    pub = new Redis(server.port, "127.0.0.1");
    sub = new Redis(server.port, "127.0.0.1");
  });
  afterAll(async () => {
    pub.disconnect();
    sub.disconnect();
    await r?.stop();
    await server.dispose();
  });

  it("survives garbage and still answers a request", async () => {
    const garbage = [
      "not json",
      "null",
      "[]",
      '"text"',
      "{}",
      '{"to":"reply"}',
      '{"to":"reply","token":{"a":1},"reply":null}',
      '{"to":"request"}',
      '{"to":"request","from":{},"token":"t"}',
      '{"to":"request","from":"nobody","token":[1],"body":{"op":"subscriptions","id":{}}}',
      '{"to":"request","from":"nobody","token":"t","body":{"op":"subscriptions","id":"r1~x","change":null}}',
      Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
    ];
    for (const g of garbage) await pub.publish("ctlt:relay:ctl:r1", g);
    const replies: string[] = [];
    sub.on("message", (_c: string, m: string) => replies.push(m));
    await sub.subscribe("ctlt:relay:ctl:probe");
    await pub.publish("ctlt:relay:ctl:r1", JSON.stringify({ to: "request", token: "t1", from: "probe", body: { op: "nothing" } }));
    for (let i = 0; i < 100 && replies.length === 0; i++) await new Promise((x) => setTimeout(x, 20));
    expect(replies.map((m) => JSON.parse(m))).toEqual([{ to: "reply", token: "t1", reply: { status: 400, body: { error: { code: "bad_request", message: "unknown control request" } } } }]);
    expect((await fetch(`${r.base}/healthz`)).status).toBe(200);
  });
});
