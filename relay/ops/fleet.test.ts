import { spawn, type ChildProcess } from "node:child_process";
import { hostname } from "node:os";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { brokerModes } from "../../test/support/modes.js";
import { RedisServer } from "../../test/support/redis-server.js";
import { RedisCluster } from "../../test/support/redis-cluster.js";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../../test/support/relay-harness.js";

/** Polls `get` until `ok` holds (guard: 15 s), returning the last value. */
async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 15_000;
  let last: T = await get();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 50));
    last = await get();
  }
  return last;
}

const getJson = async (url: string, headers: Record<string, string> = {}) => {
  const res = await fetch(url, { headers });
  return { status: res.status, text: await res.text() } as { status: number; text: string; json?: any };
};
const json = async (url: string, headers: Record<string, string> = {}) => {
  const r = await getJson(url, headers);
  return JSON.parse(r.text);
};
const fleetOf = (r: RunningRelay, headers?: Record<string, string>) => json(`${r.base}/v1/stats?scope=fleet`, headers);
const alertsOf = (r: RunningRelay, headers?: Record<string, string>) => json(`${r.base}/v1/alerts`, headers);
const ids = (view: { relays: Array<{ id: string }> }) => view.relays.map((x) => x.id).sort();

/** Fast beats so tests see changes within a fraction of a second. */
const FAST = { FANOUT_FLEET_HEARTBEAT_MS: "100", FANOUT_FLEET_TTL_MS: "1000" };

const relays: RunningRelay[] = [];
const clients: SseClient[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  for (const r of relays.splice(0)) await r.stop();
});
const start = async (env: Record<string, string>) => {
  const r = await startRelay({ ...FAST, ...env });
  relays.push(r);
  return r;
};
const open = async (r: RunningRelay, qs: string, headers?: Record<string, string>) => {
  const c = await SseClient.open(`${r.base}/v1/events?${qs}`, headers);
  clients.push(c);
  await c.waitReady();
  return c;
};

describe.each(brokerModes())("fleet view and alerts, $name", (mode) => {
  it("a relay reports itself with its counters, busiest channels and latency", async () => {
    const r = await start({ ...mode.env(), FANOUT_RELAY_ID: "solo" });
    const c = await open(r, "channel=room:1&pattern=feed:*");
    await publish(r.base, { channel: "room:1", data: 1 });
    await c.waitMessages(1);
    const view = await until("the message counted in the fleet view", () => fleetOf(r), (v) => v.relays[0]?.messages.out >= 1 && v.relays[0]?.latency);
    expect(view).toMatchObject({ scope: "fleet", self: "solo", partial: false, totals: { relays: 1, connections: 1, states: { ready: 1 } } });
    expect(view.relays[0]).toMatchObject({
      id: "solo",
      host: hostname(),
      state: "ready",
      broker: mode.name.startsWith("redis") ? "redis" : "memory",
      brokerReady: true,
      connections: 1,
      subscriptions: { channels: 1, patterns: 1 },
      slowConsumerDrops: { total: 0, hard: 0, soft: 0, budget: 0 },
    });
    expect(view.relays[0].latency.p99).toBeGreaterThanOrEqual(0);
    expect(view.topChannels.map((t: { name: string }) => t.name).sort()).toEqual(["feed:*", "room:1"]);
    if (mode.name.startsWith("redis")) expect(view.relays[0].redis.usedMemoryBytes).toBeGreaterThan(0);
    else expect(view.relays[0].redis).toBeUndefined();
    // /metrics carries the relay id as a label on every series.
    expect(await (await fetch(`${r.base}/metrics`)).text()).toMatch(/^fanout_connections\{relay="solo"\} 1$/m);
    expect((await getJson(`${r.base}/v1/stats?scope=everything`)).status).toBe(400);
  });

  it("raises a channel-over-subscribers alert in /v1/alerts and clears it when subscribers leave", async () => {
    const r = await start({ ...mode.env(), FANOUT_ALERT_CHANNEL_SUBSCRIBERS: "2" });
    const cs = [await open(r, "channel=room:big"), await open(r, "channel=room:big"), await open(r, "channel=room:big")];
    const raised = await until("the alert", () => alertsOf(r), (a) => a.alerts.some((x: { kind: string }) => x.kind === "channel_subscribers"));
    expect(raised.alerts).toEqual([
      { kind: "channel_subscribers", severity: "warning", subject: "channel:room:big", value: 3, threshold: 2, since: expect.any(Number), relay: r.relay.fleet.id },
    ]);
    expect(await (await fetch(`${r.base}/metrics`)).text()).toMatch(/^fanout_alerts_active\{kind="channel_subscribers",relay="[^"]+"\} 1$/m);
    cs[0].close();
    await until("the alert to clear", () => alertsOf(r), (a) => a.alerts.length === 0);
  });

  it("the embedded broker's fleet is the one relay; relays on one Redis see each other", async () => {
    const env = mode.env();
    const a = await start({ ...env, FANOUT_RELAY_ID: "relay-a" });
    const b = await start({ ...env, FANOUT_RELAY_ID: "relay-b" });
    if (!mode.name.startsWith("redis")) {
      expect(ids(await fleetOf(a))).toEqual(["relay-a"]);
      expect(ids(await fleetOf(b))).toEqual(["relay-b"]);
      return;
    }
    expect(ids(await until("both relays", () => fleetOf(a), (v) => v.relays.length === 2))).toEqual(["relay-a", "relay-b"]);
  });
});

describe("a fleet of relays on one Redis", () => {
  let redis: RedisServer;
  let n = 0;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis?.dispose();
  });
  const env = () => ({ REDIS_URL: redis.url, FANOUT_LOG_PREFIX: `fleet${n++}` });

  it("shows every relay with totals and alerts from any relay; a draining relay shows draining, then leaves after the TTL", async () => {
    const shared = { ...env(), FANOUT_ALERT_CHANNEL_SUBSCRIBERS: "1" };
    const a = await start({ ...shared, FANOUT_RELAY_ID: "relay-a" });
    const b = await start({ ...shared, FANOUT_RELAY_ID: "relay-b" });
    await open(a, "channel=room:1");
    await open(b, "channel=room:1");
    await open(b, "channel=room:1");
    const c = await open(b, "channel=room:2");
    await publish(a.base, { channel: "room:2", data: "x" });
    await c.waitMessages(1);

    const view = await until("both relays' counts on relay A", () => fleetOf(a), (v) => v.relays.length === 2 && v.totals.connections === 4 && v.totals.messages.out >= 1);
    expect(ids(view)).toEqual(["relay-a", "relay-b"]);
    expect(view.totals).toMatchObject({ relays: 2, states: { ready: 2, starting: 0, draining: 0 }, connections: 4, subscriptions: { channels: 3 } });
    expect(view.topChannels.find((t: { name: string }) => t.name === "room:1")).toMatchObject({ kind: "channel", subscribers: 3 });

    // B's alert (two subscribers on room:1 over a threshold of 1) is visible on A.
    const alerts = await until("B's alert on A", () => alertsOf(a), (x) => x.alerts.some((al: { relay: string }) => al.relay === "relay-b"));
    expect(alerts.alerts.filter((al: { relay: string }) => al.relay === "relay-b")).toEqual([
      expect.objectContaining({ kind: "channel_subscribers", subject: "channel:room:1", value: 2, threshold: 1 }),
    ]);
    expect(alerts.relays).toBe(2);

    relays.splice(relays.indexOf(b), 1);
    await b.relay.drain(200);
    const drained = await until("B draining", () => fleetOf(a), (v) => v.relays.find((x: { id: string }) => x.id === "relay-b")?.state === "draining");
    expect(drained.totals.states).toMatchObject({ ready: 1, draining: 1 });
    await until("B gone after its TTL", () => fleetOf(a), (v) => v.relays.length === 1);
    expect(ids(await fleetOf(a))).toEqual(["relay-a"]);
  });

  it("a relay killed with SIGKILL disappears from the fleet after the TTL", async () => {
    const shared = env();
    const a = await start({ ...shared, FANOUT_RELAY_ID: "relay-a" });
    const child = spawnRelay({ ...shared, ...FAST, FANOUT_RELAY_ID: "relay-killed" });
    try {
      await until("the child relay in the fleet", () => fleetOf(a), (v) => v.relays.some((x: { id: string; state: string }) => x.id === "relay-killed" && x.state === "ready"));
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      const after = await until("the killed relay gone", () => fleetOf(a), (v) => !v.relays.some((x: { id: string }) => x.id === "relay-killed"));
      expect(ids(after)).toEqual(["relay-a"]);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });

  it("gives anonymous callers counts only: no relay ids, hosts or channel names", async () => {
    const KEY = "pk-fleet-ops";
    const shared = { ...env(), FANOUT_PUBLISH_KEYS: KEY, FANOUT_ALERT_CHANNEL_SUBSCRIBERS: "1" };
    const a = await start({ ...shared, FANOUT_RELAY_ID: "relay-secret-a" });
    const b = await start({ ...shared, FANOUT_RELAY_ID: "relay-secret-b" });
    const key = { Authorization: `Bearer ${KEY}` };
    await open(b, "channel=user:7:reset-token-5f2a9c", key);
    await open(b, "channel=user:7:reset-token-5f2a9c", key);
    await until("both relays and the alert", () => alertsOf(a, key), (x) => x.relays === 2 && x.alerts.length === 1);

    for (const path of ["/v1/stats?scope=fleet", "/v1/alerts"]) {
      const anon = await getJson(`${a.base}${path}`);
      expect(anon.status).toBe(200);
      for (const secret of ["relay-secret", "reset-token", "user:7", hostname(), `"pid"`, `"self"`]) expect(anon.text, `${path} leaks ${secret}`).not.toContain(secret);
      const withKey = await getJson(`${a.base}${path}`, key);
      expect(withKey.text).toContain("relay-secret-b");
      expect(withKey.text).toContain("user:7:reset-token-5f2a9c");
    }
    const anonFleet = await fleetOf(a);
    expect(anonFleet.totals).toMatchObject({ relays: 2, connections: 2 });
    expect(anonFleet.relays.map((r: { connections: number }) => r.connections).sort()).toEqual([0, 2]);
    expect((await alertsOf(a)).alerts).toEqual([{ kind: "channel_subscribers", severity: "warning", value: 2, threshold: 1, since: expect.any(Number) }]);
    // A credential that is presented is checked, as on /v1/stats.
    expect((await getJson(`${a.base}/v1/alerts`, { Authorization: "Bearer wrong" })).status).toBe(401);
    expect((await getJson(`${a.base}/v1/stats?scope=fleet`, { Authorization: "Bearer wrong" })).status).toBe(401);
  });
});

describe("a relay that loses Redis", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis?.dispose();
  });

  it("raises redis_unreachable and shows itself alone (partial) until Redis is back", async () => {
    const r = await start({ REDIS_URL: redis.url, FANOUT_LOG_PREFIX: "down", FANOUT_RELAY_ID: "relay-a" });
    await until("ready", () => fleetOf(r), (v) => v.relays[0]?.state === "ready" && !v.partial);
    await redis.stop();
    const down = await until("the alert", () => alertsOf(r), (a) => a.alerts.some((x: { kind: string }) => x.kind === "redis_unreachable"));
    expect(down).toMatchObject({ partial: true, relays: 1 });
    expect(down.alerts).toEqual([expect.objectContaining({ kind: "redis_unreachable", severity: "critical", subject: "redis", relay: "relay-a" })]);
    expect(await (await fetch(`${r.base}/metrics`)).text()).toMatch(/^fanout_broker_ready\{relay="relay-a"\} 0$/m);
    await redis.start();
    await until("the alert to clear", () => alertsOf(r), (a) => a.alerts.length === 0 && !a.partial);
  });
});

describe("the fleet on Redis Cluster", () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
  }, 60_000);
  afterAll(async () => {
    await cluster?.dispose();
  });

  it("keeps the fleet's keys in one slot, so heartbeats and listings work across nodes", async () => {
    const env = { REDIS_URL: cluster.url, FANOUT_LOG_PREFIX: "cl" };
    const a = await start({ ...env, FANOUT_RELAY_ID: "relay-a" });
    await start({ ...env, FANOUT_RELAY_ID: "relay-b" });
    const view = await until("both relays on the cluster", () => fleetOf(a), (v) => v.relays.length === 2);
    expect(view.partial).toBe(false);
    expect(ids(view)).toEqual(["relay-a", "relay-b"]);
  });
});

function spawnRelay(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "relay/main.ts"], {
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}
