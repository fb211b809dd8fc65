import { afterEach, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { SseClient, publish } from "../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { RedisServer } from "../test/support/redis-server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => Promise<boolean> | boolean, ms = 10_000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe("Redis outages under open streams", () => {
  let server: RedisServer | undefined;
  let r: RunningRelay | undefined;
  afterEach(async () => {
    await r?.stop();
    await server?.dispose();
  });

  it("keeps streams open while Redis is down, answers 503 + Retry-After, and resumes delivery when it is back", async () => {
    server = await RedisServer.start();
    r = await startRelay({ REDIS_URL: server.url });
    const c = await SseClient.open(`${r.base}/v1/events?channel=live&pattern=pat:*`);
    await c.waitReady();
    await publish(r.base, { channel: "live", data: "before" });
    await c.waitMessages(1);

    await server.stop();
    await until(async () => (await fetch(`${r!.base}/readyz`)).status === 503, 10_000, "readyz 503");
    const p = await publish(r.base, { channel: "live", data: "during" });
    expect(p.status).toBe(503);
    expect(p.json.error.code).toBe("broker_unavailable");
    expect(Number(p.headers.get("retry-after"))).toBeGreaterThan(0);
    const sub = await fetch(`${r.base}/v1/events?channel=other`);
    expect(sub.status).toBe(503);
    expect(sub.headers.get("retry-after")).toBeTruthy();
    expect((await fetch(`${r.base}/healthz`)).status).toBe(200);
    expect(c.closed).toBe(false);

    await server.start();
    await until(async () => (await fetch(`${r!.base}/readyz`)).status === 200, 15_000, "readyz 200");
    // Subscriptions were re-established on the fresh server: both the channel and the pattern.
    await until(async () => (await publish(r!.base, { channel: "live", data: "after" })).json.receivers > 0, 10_000, "resubscribed");
    await publish(r.base, { channel: "pat:x", data: "after-pattern" });
    // Order holds per channel, not across channels: wait for both.
    await c.waitFor((x) => ["after", "after-pattern"].every((d) => x.envelopes().some((e) => e.data === d)), 5000, "channel and pattern after restart");
    const data = c.envelopes().map((e) => e.data);
    expect(data[0]).toBe("before");
    expect(data).toContain("after");
    expect(data).not.toContain("during");
    expect(c.closed).toBe(false);
    c.close();
  });

  it("loses nothing and duplicates nothing when the subscription connection is killed mid-stream", async () => {
    server = await RedisServer.start();
    r = await startRelay({ REDIS_URL: server.url });
    const c = await SseClient.open(`${r.base}/v1/events?channel=steady&pattern=steady:*`);
    await c.waitReady();
    const admin = new Redis(server.url);
    const total = 300;
    let killed = 0;
    for (let i = 0; i < total; i++) {
      const ch = i % 2 === 0 ? "steady" : "steady:odd";
      // Publish through a second path (plain script via another relay would also do): the API.
      const res = await publish(r.base, { channel: ch, data: i });
      expect(res.status).toBe(200);
      if (i % 60 === 30) killed += Number(await admin.call("CLIENT", "KILL", "TYPE", "pubsub"));
    }
    expect(killed).toBeGreaterThan(0);
    await c.waitMessages(total, 15_000);
    await sleep(200);
    const got = c.envelopes().map((e) => e.data as number);
    expect(got.filter((x) => x % 2 === 0)).toEqual(Array.from({ length: total / 2 }, (_, k) => 2 * k));
    expect(got.filter((x) => x % 2 === 1)).toEqual(Array.from({ length: total / 2 }, (_, k) => 2 * k + 1));
    expect(got).toHaveLength(total);
    const metrics = await (await fetch(`${r.base}/metrics`)).text();
    expect(metrics).toMatch(/fanout_catchups_total\{relay="[^"]+"\} [1-9]/);
    admin.disconnect();
    c.close();
  });
});

describe("a relay started while Redis is down", () => {
  it("serves /healthz, refuses streams with 503, then delivers live and starts its cursor at the log's end once Redis is up", async () => {
    // Persistence on, so the log survives the restart as it would on a production Redis.
    const server = await RedisServer.start(["--appendonly", "yes", "--appendfsync", "always"]);
    let r: RunningRelay | undefined;
    try {
      const first = await startRelay({ REDIS_URL: server.url });
      await publish(first.base, { channel: "late", data: "old" });
      await first.stop();
      await server.stop();

      r = await startRelay({ REDIS_URL: server.url });
      expect((await fetch(`${r.base}/healthz`)).status).toBe(200);
      expect((await fetch(`${r.base}/readyz`)).status).toBe(503);
      const refused = await fetch(`${r.base}/v1/events?channel=late`);
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBeTruthy();

      await server.start();
      const c = await (async () => {
        for (let i = 0; i < 100; i++) {
          const s = await SseClient.open(`${r!.base}/v1/events?channel=late`);
          if (s.status === 200) return s;
          await sleep(100);
        }
        throw new Error("stream never accepted after Redis came back");
      })();
      await c.waitReady();
      const readyId = c.lastEventId!;
      await publish(r.base, { channel: "late", data: "new" });
      // Live: the subscriber connection's first ready came after the relay started.
      await c.waitMessages(1);
      c.close();
      // Resuming from the ready id replays what came after it, not the history before.
      const c2 = await SseClient.open(`${r.base}/v1/events?channel=late`, { "Last-Event-ID": readyId });
      await c2.waitMessages(1);
      await sleep(100);
      expect(c2.envelopes().map((e) => e.data)).toEqual(["new"]);
      c2.close();
    } finally {
      await r?.stop();
      await server.dispose();
    }
  });
});
