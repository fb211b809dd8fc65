import { afterEach, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { SseClient, publish } from "../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { redisFixture } from "../test/support/modes.js";

describe("interop with plain Redis Pub/Sub", () => {
  const redisFx = redisFixture();
  let r: RunningRelay;
  afterEach(async () => {
    await r?.stop();
  });

  it("delivers a plain PUBLISH: JSON parsed into data, anything else as a string, live only", async () => {
    r = await startRelay({ REDIS_URL: redisFx.server.url, FANOUT_LOG_PREFIX: "interop1" });
    const c = await SseClient.open(`${r.base}/v1/events?channel=orders:events&pattern=raw:*`);
    await c.waitReady();
    await redisFx.redis.publish("orders:events", '{"a":1}');
    await redisFx.redis.publish("orders:events", "not json\nevent: evil");
    await redisFx.redis.publish("raw:x", "  [1, 2]  ");
    // Looks like an envelope but is not one of ours (wrong channel, hostile type): plain data.
    await redisFx.redis.publish("orders:events", JSON.stringify({ id: "0-1-0", channel: "elsewhere", data: 1, ts: 1 }));
    await redisFx.redis.publish("orders:events", JSON.stringify({ id: "0-1-0", channel: "orders:events", type: "x\ny", data: 1, ts: 1 }));
    await redisFx.redis.publish("orders:events", Buffer.from([0xff, 0xfe, 0x41]));
    // A current-looking id in a partition that does not exist must not reach the cursor.
    await redisFx.redis.publish("orders:events", JSON.stringify({ id: `99-${Date.now()}-0`, channel: "orders:events", data: "p99", ts: Date.now() }));
    await c.waitMessages(7);
    const env = c.envelopes();
    expect(env[0]).toMatchObject({ channel: "orders:events", data: { a: 1 } });
    expect(env[1].data).toBe("not json\nevent: evil");
    expect(env[2]).toMatchObject({ channel: "raw:x", pattern: "raw:*", data: [1, 2] });
    expect(env[3].data).toEqual({ id: "0-1-0", channel: "elsewhere", data: 1, ts: 1 });
    expect(env[4].data).toMatchObject({ type: "x\ny" });
    expect(typeof env[5].data).toBe("string");
    expect(env[6].data).toMatchObject({ data: "p99" });
    expect(env[6].id).toMatch(/^x-/);
    expect(c.messages().every((m) => m.event === "message")).toBe(true);
    for (const e of env) {
      expect(typeof e.id).toBe("string");
      expect(typeof e.ts).toBe("number");
    }
    c.close();
  });

  it("gives plain Redis subscribers the envelope JSON of API publishes", async () => {
    r = await startRelay({ REDIS_URL: redisFx.server.url, FANOUT_LOG_PREFIX: "interop2" });
    const sub = new Redis(redisFx.server.url);
    const got: string[] = [];
    sub.on("message", (_ch: string, msg: string) => got.push(msg));
    await sub.subscribe("orders:events");
    const res = await publish(r.base, { channel: "orders:events", data: { total: 5 }, type: "order.created" });
    expect(res.json.receivers).toBe(1);
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((x) => setTimeout(x, 20));
    // Plus `mac`, the publish script's tag that tells the relays a log message from a look-alike.
    expect(JSON.parse(got[0])).toEqual({ id: res.json.id, channel: "orders:events", type: "order.created", data: { total: 5 }, ts: expect.any(Number), mac: expect.stringMatching(/^[0-9a-f]{40}$/) });
    sub.disconnect();
  });
});
