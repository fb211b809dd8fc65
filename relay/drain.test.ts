import { spawn, type ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { SseClient, publish } from "../test/support/sse-client.js";
import { freePort, RedisServer } from "../test/support/redis-server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `npm start` as users run it: a separate Node process. */
async function spawnRelay(env: Record<string, string>): Promise<{ proc: ChildProcess; base: string; exited: Promise<number | null> }> {
  const port = await freePort();
  const proc = spawn(process.execPath, ["--import", "tsx", "relay/main.ts"], {
    env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  let out = "";
  proc.stdout!.on("data", (b) => (out += b));
  proc.stderr!.on("data", (b) => (out += b));
  const end = Date.now() + 15_000;
  while (!out.includes("listening")) {
    if (Date.now() > end || proc.exitCode !== null) throw new Error(`relay did not start: ${out}`);
    await sleep(50);
  }
  return { proc, base: `http://127.0.0.1:${port}`, exited };
}

describe("relay processes", () => {
  const procs: ChildProcess[] = [];
  let redis: RedisServer | undefined;
  afterEach(async () => {
    for (const p of procs.splice(0)) if (p.exitCode === null) p.kill("SIGKILL");
    await redis?.dispose();
    redis = undefined;
  });

  it("SIGTERM drains: refuses new streams, ends open ones, exits within the grace period", async () => {
    const r = await spawnRelay({ FANOUT_DRAIN_GRACE_MS: "3000" });
    procs.push(r.proc);
    const c = await SseClient.open(`${r.base}/v1/events?channel=d`);
    await c.waitReady();
    const t0 = Date.now();
    r.proc.kill("SIGTERM");
    await c.waitClosed(5000);
    const code = await r.exited;
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3500);
    await expect(fetch(`${r.base}/healthz`)).rejects.toThrow();
  });

  it("hands a client over from a drained relay to another one sharing Redis, losing nothing", async () => {
    redis = await RedisServer.start();
    const env = { REDIS_URL: redis.url, FANOUT_DRAIN_GRACE_MS: "2000" };
    const a = await spawnRelay(env);
    const b = await spawnRelay(env);
    procs.push(a.proc, b.proc);
    const c1 = await SseClient.open(`${a.base}/v1/events?channel=h&pattern=hp:*`);
    await c1.waitReady();
    for (let i = 0; i < 5; i++) await publish(b.base, { channel: i % 2 ? "hp:x" : "h", data: i });
    await c1.waitMessages(5);
    a.proc.kill("SIGTERM");
    await c1.waitClosed(5000);
    // Published while the client has no connection at all: through relay B.
    for (let i = 5; i < 10; i++) await publish(b.base, { channel: i % 2 ? "hp:x" : "h", data: i });
    const c2 = await SseClient.open(`${b.base}/v1/events?channel=h&pattern=hp:*`, { "Last-Event-ID": c1.lastEventId! });
    await c2.waitMessages(5);
    for (let i = 10; i < 12; i++) await publish(b.base, { channel: i % 2 ? "hp:x" : "h", data: i });
    await c2.waitMessages(7);
    await sleep(100);
    expect(c2.envelopes().map((e) => e.data)).toEqual([5, 6, 7, 8, 9, 10, 11]);
    expect(c2.events.some((e) => e.event === "reset")).toBe(false);
    // And back to another fresh relay from B's ids: ids are valid on every relay sharing the Redis.
    const c3Relay = await spawnRelay(env);
    procs.push(c3Relay.proc);
    const last = c2.lastEventId!;
    c2.close();
    await publish(b.base, { channel: "h", data: 12 });
    const c3 = await SseClient.open(`${c3Relay.base}/v1/events?channel=h&pattern=hp:*`, { "Last-Event-ID": last });
    await c3.waitMessages(1);
    await sleep(100);
    expect(c3.envelopes().map((e) => e.data)).toEqual([12]);
    c3.close();
  });
});
