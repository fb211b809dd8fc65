import { createHmac } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { publish } from "../../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { RedisServer } from "../../test/support/redis-server.js";

/** Refusals while Redis is down say so, and nothing about where Redis is or what it said. */
describe("Redis errors seen from outside", () => {
  let server: RedisServer | undefined;
  let r: RunningRelay | undefined;
  afterEach(async () => {
    await r?.stop();
    await server?.dispose();
  });

  it("answer 503 broker_unavailable without Redis's address or error text", async () => {
    server = await RedisServer.start();
    const port = new URL(server.url).port;
    r = await startRelay({ REDIS_URL: server.url, FANOUT_HOOK_SECRET: "s3cret", FANOUT_PUBLISH_KEYS: "pk" });
    await server.stop();
    for (let i = 0; i < 100 && (await fetch(`${r.base}/readyz`)).status !== 503; i++) await new Promise((x) => setTimeout(x, 50));
    const body = JSON.stringify({ tags: ["t"] });
    const hook = await fetch(`${r.base}/v1/hooks/generic`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Fanout-Signature": `sha256=${createHmac("sha256", "s3cret").update(body).digest("hex")}` },
      body,
    });
    const pub = await publish(r.base, { channel: "c", data: 1 }, { Authorization: "Bearer pk" });
    for (const [what, status, text] of [["hook", hook.status, await hook.text()], ["publish", pub.status, JSON.stringify(pub.json)]] as const) {
      expect(status, what).toBe(503);
      expect(JSON.parse(text).error.code, what).toBe("broker_unavailable");
      expect(JSON.parse(text).error.message, what).toBe("Redis is unreachable");
      for (const leak of [port, "127.0.0.1", "ECONNREFUSED", "Connection is closed", "Stream", "enableOfflineQueue"]) expect(text, what).not.toContain(leak);
    }
  });
});
