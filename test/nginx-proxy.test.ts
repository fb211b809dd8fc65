import { request } from "node:http";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FanoutClient } from "../client/fanout-client.js";
import type { Envelope } from "../client/envelope.js";
import { nginxConfigFor, startNginx, type RunningNginx } from "./support/nginx.js";
import { RedisServer } from "./support/redis-server.js";
import { startRelay, type RunningRelay } from "./support/relay-harness.js";
import { SseClient, publish } from "./support/sse-client.js";

/*
 * Debian's nginx with deploy/nginx.conf (the file docker-compose.yml mounts, only the
 * upstreams, listen address and temp paths replaced) in front of two relays sharing a
 * private redis-server: what users run in production, on loopback.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

let redis: RedisServer;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis?.dispose();
});

interface Stack {
  relays: RunningRelay[];
  proxy: RunningNginx;
  /** Open SSE streams on both relays together. */
  streams(): number;
}

const running: Array<{ relays: RunningRelay[]; proxy?: RunningNginx; drained: Set<RunningRelay> }> = [];
afterEach(async () => {
  for (const s of running.splice(0)) {
    await s.proxy?.stop();
    for (const r of s.relays) if (!s.drained.has(r)) await r.stop();
  }
});

/** Two relays on the shared Redis behind nginx; `edit` changes the generated nginx.conf. */
async function stack(env: Record<string, string> = {}, edit?: (conf: string) => string): Promise<Stack & { drain(r: RunningRelay): Promise<void> }> {
  const entry = { relays: [] as RunningRelay[], proxy: undefined as RunningNginx | undefined, drained: new Set<RunningRelay>() };
  running.push(entry);
  // The proxy connects to the relays from 127.0.0.1: that is "the proxy's network" here.
  const relayEnv = { REDIS_URL: redis.url, FANOUT_TRUSTED_PROXIES: "127.0.0.1", FANOUT_RETRY_MS: "100", ...env };
  for (let i = 0; i < 2; i++) entry.relays.push(await startRelay(relayEnv));
  const proxy = await startNginx((port, prefix) => nginxConfigFor({ upstreams: entry.relays.map((r) => `127.0.0.1:${r.port}`), port, prefix, edit }));
  entry.proxy = proxy;
  return {
    relays: entry.relays,
    proxy,
    streams: () => entry.relays.reduce((n, r) => n + (entry.drained.has(r) ? 0 : r.relay.context.connections.size), 0),
    drain: async (r) => {
      entry.drained.add(r);
      await r.relay.drain(2000);
    },
  };
}

let channelSeq = 0;

/**
 * Subscribes at `subscribeBase`, then publishes `count` messages one at a time (to
 * `publishBase`), each only once the previous one has arrived: a proxy that buffers the
 * stream holds a small message back, and this fails. Returns each publish→receive time (ms).
 */
async function lockstep(s: Stack, subscribeBase: string, publishBase: string, count: number, guardMs: number): Promise<number[]> {
  const channel = `lockstep-${++channelSeq}`;
  await waitFor(() => s.streams() === 0, "earlier streams to close");
  // Not awaited: a buffering proxy holds back the response headers too.
  const opening = SseClient.open(`${subscribeBase}/v1/events?channel=${channel}`);
  opening.catch(() => undefined);
  let c: SseClient | undefined;
  try {
    // Subscribed once a relay holds the stream (it registers it once its headers are written).
    await waitFor(() => s.streams() === 1, "the stream to reach a relay");
    const latencies: number[] = [];
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      const deadline = sleep(guardMs).then(() => Promise.reject(new Error("guard")));
      deadline.catch(() => undefined);
      const arrived = Promise.race([opening, deadline]).then((client) => {
        c = client;
        expect(client.status).toBe(200);
        return client.waitMessages(i + 1, guardMs).then(() => performance.now());
      });
      arrived.catch(() => undefined);
      const res = await publish(publishBase, { channel, data: i });
      expect(res.status).toBe(200);
      try {
        latencies.push((await arrived) - t0);
      } catch {
        throw new Error(`message ${i} did not arrive within ${guardMs} ms of its publish (the stream is buffered)`);
      }
    }
    expect(c!.envelopes().map((e) => e.data)).toEqual([...Array(count).keys()]);
    return latencies;
  } finally {
    c?.close();
    void opening.then((late) => late.close(), () => undefined);
  }
}

function summary(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(2);
  return `median ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${s[s.length - 1].toFixed(2)} ms (n=${s.length})`;
}

/** A GET from a chosen loopback source address (all of 127/8 is local on Linux); a 200 stream is kept open. */
function streamFrom(base: string, localAddress: string, path: string): Promise<{ status: number; body: string; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { localAddress, headers: { Accept: "text/event-stream" } }, (res) => {
      const close = () => req.destroy();
      if (res.statusCode === 200) return resolve({ status: 200, body: "", close });
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, close }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("nginx with deploy/nginx.conf in front of two relays", () => {
  it("streams without buffering: each message arrives before the next is published, about as fast as direct", async () => {
    const s = await stack();
    const [a, b] = s.relays;
    // Publishing always goes straight to relay B; only the subscriber's path differs.
    // A first pass each way warms up connections and code paths; the second is reported.
    await lockstep(s, a.base, b.base, 10, 5000);
    await lockstep(s, s.proxy.base, b.base, 10, 5000);
    const direct = await lockstep(s, a.base, b.base, 40, 5000);
    const proxied = await lockstep(s, s.proxy.base, b.base, 40, 5000);
    // Reported, not asserted (speed is never asserted): the proxy's added latency.
    console.log(`[nginx-proxy] publish→receive, subscriber direct on a relay: ${summary(direct)}`);
    console.log(`[nginx-proxy] publish→receive, subscriber through nginx:      ${summary(proxied)}`);
  });

  it("the lockstep check fails through a proxy that buffers the stream", async () => {
    // proxy_buffering on alone still streams: the relay's "X-Accel-Buffering: no" turns it
    // off per response. A proxy that ignores that header (here nginx told to) buffers.
    const honoured = await stack({}, (conf) => conf.replace("proxy_buffering off;", "proxy_buffering on;"));
    await lockstep(honoured, honoured.proxy.base, honoured.relays[1].base, 5, 5000);

    const buffering = await stack({}, (conf) => conf.replace("proxy_buffering off;", "proxy_buffering on;\n            proxy_ignore_headers X-Accel-Buffering;"));
    await expect(lockstep(buffering, buffering.proxy.base, buffering.relays[1].base, 5, 1000)).rejects.toThrow(/message 0 did not arrive/);
  });

  it("a client on a draining relay resumes on the other one through nginx, missing and repeating nothing", async () => {
    const s = await stack();
    const client = new FanoutClient({ url: s.proxy.base, channels: ["handover"], patterns: ["handover:*"], backoff: { initialMs: 50, maxMs: 300 } });
    const got: Envelope<number>[] = [];
    const ready: string[] = [];
    const resets: string[] = [];
    client.on<number>("*", (e) => got.push(e));
    client.onReady((i) => ready.push(i.connection));
    client.onReset((r) => resets.push(r));
    try {
      await waitFor(() => ready.length === 1, "ready through nginx");
      // Published through nginx too (either relay takes it: they share the Redis log).
      for (let i = 0; i < 4; i++) expect((await publish(s.proxy.base, { channel: i % 2 ? "handover:x" : "handover", data: i })).status).toBe(200);
      await waitFor(() => got.length === 4, "4 live messages");

      const holder = s.relays.find((r) => r.relay.context.connections.size === 1)!;
      const other = s.relays.find((r) => r !== holder)!;
      expect(holder).toBeDefined();
      await s.drain(holder);
      // Published while the client is between relays, straight to the survivor.
      for (let i = 4; i < 8; i++) expect((await publish(other.base, { channel: i % 2 ? "handover:x" : "handover", data: i })).status).toBe(200);
      await waitFor(() => ready.length === 2, "the client to reconnect through nginx");
      // And through nginx again, whose only live upstream now is the survivor.
      for (let i = 8; i < 10; i++) expect((await publish(s.proxy.base, { channel: "handover", data: i })).status).toBe(200);
      await waitFor(() => got.length >= 10, "all 10 messages");
      await sleep(100);

      // Every message exactly once, in order per channel (the log keeps order per channel,
      // not across channels in different partitions).
      expect(got.map((e) => e.data).sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
      for (const ch of ["handover", "handover:x"]) {
        const seq = got.filter((e) => e.channel === ch).map((e) => e.data);
        expect(seq).toEqual([...seq].sort((x, y) => x - y));
      }
      expect(resets).toEqual([]);
      expect(other.relay.context.connections.size).toBe(1);
      expect(new Set(ready).size).toBe(2);
    } finally {
      client.close();
    }
  });

  it("the relays see each client's own address through X-Forwarded-For from the trusted proxy", async () => {
    // One stream per client address per relay: clients behind one proxy are still limited
    // one by one, which only works if the relays see past the proxy's own address.
    const s = await stack({ FANOUT_MAX_CONNECTIONS_PER_IP: "1" });
    const held: Array<{ close(): void }> = [];
    try {
      const clients = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
      const first = await Promise.all(clients.map((addr) => streamFrom(s.proxy.base, addr, "/v1/events?channel=xff")));
      held.push(...first);
      expect(first.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      // More from one client: two relays give it at most two streams between them.
      const again: Array<{ status: number; body: string }> = [];
      for (let i = 0; i < 4; i++) {
        const r = await streamFrom(s.proxy.base, "127.0.0.2", "/v1/events?channel=xff");
        held.push(r);
        again.push(r);
      }
      const refused = again.filter((r) => r.status === 429);
      expect(again.filter((r) => r.status === 200).length).toBeLessThanOrEqual(1);
      expect(refused.length).toBeGreaterThanOrEqual(3);
      expect(JSON.parse(refused[0].body).error.code).toBe("too_many_connections_from_ip");
    } finally {
      held.forEach((h) => h.close());
    }
  });
});
