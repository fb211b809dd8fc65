import { afterEach, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { createHmac } from "node:crypto";
import { SseClient } from "../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";
import { tagSetKey } from "../routes/cache-tags.js";

const modes = brokerModes();

async function post(base: string, path: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body });
  return { status: res.status, json: await res.json() };
}

describe.each(modes)("cache invalidation and hooks on the relay ($name)", (mode) => {
  let r: RunningRelay;
  afterEach(async () => {
    await r?.stop();
  });

  it("POST /v1/invalidate deletes keys and tagged keys (on Redis) and broadcasts once on invalidate:<scope>", async () => {
    const env = mode.env();
    r = await startRelay(env);
    const redisServer = mode.redis();
    const redis = redisServer ? new Redis(redisServer.url) : undefined;
    const prefix = env.FANOUT_LOG_PREFIX ?? "fanout";
    if (redis) {
      await redis.set("page:/a", "x");
      await redis.set("page:/b", "y");
      await redis.set("keep", "z");
      await redis.sadd(tagSetKey("pricing", prefix), "page:/b");
    }
    const c = await SseClient.open(`${r.base}/v1/events?channel=invalidate:web`);
    await c.waitReady();
    const res = await post(r.base, "/v1/invalidate", JSON.stringify({ keys: ["page:/a"], tags: ["pricing"], paths: ["/a"], scope: "web" }));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id: expect.any(String), receivers: expect.any(Number) });
    expect(res.json.deleted).toBe(redis ? 2 : 0);
    await c.waitMessages(1);
    const env0 = c.envelopes()[0];
    expect(env0).toMatchObject({ id: res.json.id, channel: "invalidate:web", type: "invalidate" });
    expect(env0.data).toMatchObject({ scope: "web", keys: ["page:/a"], tags: ["pricing"], paths: ["/a"] });
    if (redis) {
      expect(await redis.exists("page:/a", "page:/b", "keep")).toBe(1);
      redis.disconnect();
    }
    const bad = await post(r.base, "/v1/invalidate", JSON.stringify({ keys: "nope" }));
    expect(bad.status).toBe(400);
    c.close();
  });

  it("POST /v1/hooks/generic verifies the signature and broadcasts a redelivery once", async () => {
    r = await startRelay({ ...mode.env(), FANOUT_HOOK_SECRET: "s3cret" });
    const c = await SseClient.open(`${r.base}/v1/events?channel=invalidate:default`);
    await c.waitReady();
    const body = JSON.stringify({ tags: ["release"] });
    const sig = `sha256=${createHmac("sha256", "s3cret").update(body).digest("hex")}`;
    expect((await post(r.base, "/v1/hooks/generic", body)).status).toBe(401);
    expect((await post(r.base, "/v1/hooks/generic", body, { "X-Fanout-Signature": "sha256=00" })).status).toBe(401);
    const first = await post(r.base, "/v1/hooks/generic", body, { "X-Fanout-Signature": sig, "X-Fanout-Delivery": "d-1" });
    expect(first.status).toBe(200);
    const again = await post(r.base, "/v1/hooks/generic", body, { "X-Fanout-Signature": sig, "X-Fanout-Delivery": "d-1" });
    expect(again.json.duplicate).toBe(true);
    await c.waitMessages(1);
    await new Promise((x) => setTimeout(x, 100));
    expect(c.messages()).toHaveLength(1);
    c.close();
  });
});
