import { spawn, type ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { SseClient } from "../../test/support/sse-client.js";
import { relayFixture, startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { brokerModes, redisFixture } from "../../test/support/modes.js";
import { freePort } from "../../test/support/redis-server.js";
import { SignJWT } from "jose";

const SECRET = "presence-test-secret-0123456789abcdef01";
const modes = brokerModes();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function token(sub: string, info?: Record<string, unknown>, grants: string[] = ["room:*", "lobby"]): Promise<string> {
  return new SignJWT({ fanout: { subscribe: grants }, ...(info ? { info } : {}) })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
}

/** The presence events a stream received: "join:u1", "leave:u2", … */
function presence(c: SseClient): string[] {
  return c.events.filter((e) => e.event === "presence").map((e) => {
    const env = JSON.parse(e.data);
    return `${env.data.action}:${env.data.member.sub}`;
  });
}

async function get(base: string, path: string, auth?: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, { headers: auth ? { Authorization: `Bearer ${auth}` } : {} });
  return { status: res.status, json: await res.json() };
}

const env = { FANOUT_JWT_SECRET: SECRET, FANOUT_PUBLISH_KEYS: "pk", FANOUT_PRESENCE_CHANNELS: "room:*", FANOUT_PUBLIC_CHANNELS: "room:open" };

describe.each(modes)("presence on the $name", (mode) => {
  let r: RunningRelay;
  const { start, open } = relayFixture();

  it("lists members by sub with info, one join per user's first stream and one leave at their last", async () => {
    r = await start({ ...mode.env(), ...env });
    const ann = await token("ann", { name: "Ann" });
    const bob = await token("bob");
    const watcher = await open("channel=room:1", { Authorization: `Bearer ${ann}` });
    await watcher.waitFor(() => presence(watcher).length === 1, 5000, "own join");
    expect(presence(watcher)).toEqual(["join:ann"]);
    const joinEnv = JSON.parse(watcher.events.find((e) => e.event === "presence")!.data);
    expect(joinEnv).toMatchObject({ channel: "room:1", type: "presence", data: { action: "join", channel: "room:1", member: { sub: "ann", info: { name: "Ann" } } } });

    const b1 = await open("channel=room:1", { Authorization: `Bearer ${bob}` });
    await b1.waitReady();
    const b2 = await open("channel=room:1&channel=lobby", { Authorization: `Bearer ${bob}` });
    await b2.waitReady();
    await watcher.waitFor(() => presence(watcher).length === 2, 5000, "bob's join");
    const list = await get(r.base, "/v1/presence/room:1", ann);
    expect(list.status).toBe(200);
    expect(list.json.channel).toBe("room:1");
    expect(list.json.anonymous).toBe(0);
    expect(list.json.members.sort((a: any, b: any) => a.sub.localeCompare(b.sub))).toEqual([
      { sub: "ann", info: { name: "Ann" }, connections: 1 },
      { sub: "bob", connections: 2 },
    ]);
    expect((await get(r.base, "/v1/presence/room:1?stats=1", ann)).json).toEqual({ channel: "room:1", connections: 3, users: 2, anonymous: 0 });

    b1.close();
    await sleep(200);
    expect(presence(watcher)).toEqual(["join:ann", "join:bob"]);
    b2.close();
    await watcher.waitFor(() => presence(watcher).length === 3, 5000, "bob's leave");
    expect(presence(watcher)).toEqual(["join:ann", "join:bob", "leave:bob"]);
    expect((await get(r.base, "/v1/presence/room:1?stats=1", ann)).json).toEqual({ channel: "room:1", connections: 1, users: 1, anonymous: 0 });
  });

  it("counts anonymous streams without listing them; authorizes reads like subscribing; 404 off the presence globs", async () => {
    r = await start({ ...mode.env(), ...env });
    const anon = await open("channel=room:open");
    await anon.waitReady();
    const ann = await token("ann");
    await sleep(100);
    expect((await get(r.base, "/v1/presence/room:open")).json).toEqual({ channel: "room:open", members: [], anonymous: 1 });
    expect((await get(r.base, "/v1/presence/room:open?stats=1")).json).toEqual({ channel: "room:open", connections: 1, users: 0, anonymous: 1 });
    expect(presence(anon)).toEqual([]);
    expect((await get(r.base, "/v1/presence/room:secret")).status).toBe(401);
    expect((await get(r.base, "/v1/presence/room:secret", await token("eve", undefined, ["other"]))).json.error.code).toBe("forbidden_channel");
    expect((await get(r.base, "/v1/presence/room:secret", ann)).json).toEqual({ channel: "room:secret", members: [], anonymous: 0 });
    // A channel name with a slash is one path segment, percent-encoded.
    expect((await get(r.base, `/v1/presence/${encodeURIComponent("room:a/b%")}?stats=1`, ann)).json).toEqual({ channel: "room:a/b%", connections: 0, users: 0, anonymous: 0 });
    for (const bad of ["%ED%A0%80", "%FF", "room%3A%E2%82"]) expect((await get(r.base, `/v1/presence/${bad}`, ann)).json.error.code, bad).toBe("invalid_encoding");
    const off = await get(r.base, "/v1/presence/lobby", ann);
    expect(off).toMatchObject({ status: 404, json: { error: { code: "presence_not_enabled" } } });
  });

  it("a channel added or removed on an open stream joins or leaves its presence", async () => {
    r = await start({ ...mode.env(), ...env });
    const ann = await token("ann");
    const bob = await token("bob");
    const watcher = await open("channel=room:2", { Authorization: `Bearer ${ann}` });
    await watcher.waitFor(() => presence(watcher).length === 1, 5000, "own join");
    const b = await open("channel=lobby", { Authorization: `Bearer ${bob}` });
    await b.waitReady();
    const { connection, secret } = JSON.parse(b.events[0].data);
    const post = (body: unknown) => fetch(`${r.base}/v1/connections/${connection}/subscriptions`, { method: "POST", headers: { Authorization: `Bearer ${bob}` }, body: JSON.stringify({ secret, ...(body as object) }) });
    expect((await post({ add: { channels: ["room:2"] } })).status).toBe(200);
    await watcher.waitFor(() => presence(watcher).length === 2, 5000, "bob's join");
    expect((await post({ remove: { channels: ["room:2"] } })).status).toBe(200);
    await watcher.waitFor(() => presence(watcher).length === 3, 5000, "bob's leave");
    expect(presence(watcher)).toEqual(["join:ann", "join:bob", "leave:bob"]);
  });
});

describe("presence across relays on one Redis", () => {
  const redis = redisFixture();
  const { openUrl } = relayFixture();
  const procs: ChildProcess[] = [];
  const relays: RunningRelay[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) if (p.exitCode === null) p.kill("SIGKILL");
    for (const x of relays.splice(0)) await x.stop();
  });

  it("two relays see each other's members, and join events cross relays", async () => {
    const shared = { ...env, REDIS_URL: redis.server.url, FANOUT_LOG_PREFIX: "pres2" };
    const a = await startRelay(shared);
    const b = await startRelay(shared);
    relays.push(a, b);
    const ann = await token("ann");
    const bob = await token("bob");
    const onA = await openUrl(`${a.base}/v1/events?channel=room:x`, { Authorization: `Bearer ${ann}` });
    await onA.waitFor(() => presence(onA).length === 1, 5000, "own join");
    const onB = await openUrl(`${b.base}/v1/events?channel=room:x`, { Authorization: `Bearer ${bob}` });
    await onA.waitFor(() => presence(onA).length === 2, 5000, "bob's join on the other relay");
    await onB.waitFor(() => presence(onB).length === 1, 5000, "bob's own join");
    for (const base of [a.base, b.base]) {
      const { json } = await get(base, "/v1/presence/room:x?stats=1", ann);
      expect(json).toEqual({ channel: "room:x", connections: 2, users: 2, anonymous: 0 });
    }
    onB.close();
    await onA.waitFor(() => presence(onA).length === 3, 5000, "bob's leave");
    expect(presence(onA)).toEqual(["join:ann", "join:bob", "leave:bob"]);
  });

  it("one user on two relays: one join for the first stream, one leave after the last", async () => {
    const shared = { ...env, REDIS_URL: redis.server.url, FANOUT_LOG_PREFIX: "pres-u" };
    const a = await startRelay(shared);
    const b = await startRelay(shared);
    relays.push(a, b);
    const watcher = await openUrl(`${a.base}/v1/events?channel=room:u`, { Authorization: `Bearer ${await token("watcher")}` });
    await watcher.waitFor(() => presence(watcher).length === 1, 5000, "own join");
    const ann = await token("ann");
    const onA = await openUrl(`${a.base}/v1/events?channel=room:u`, { Authorization: `Bearer ${ann}` });
    await watcher.waitFor(() => presence(watcher).length === 2, 5000, "ann's join");
    const onB = await openUrl(`${b.base}/v1/events?channel=room:u`, { Authorization: `Bearer ${ann}` });
    await onB.waitReady();
    const members = async () => (await get(b.base, "/v1/presence/room:u", ann)).json.members.find((m: { sub: string }) => m.sub === "ann")?.connections;
    const until = async (n: number | undefined) => {
      const end = Date.now() + 5000;
      while ((await members()) !== n && Date.now() < end) await sleep(20);
      expect(await members()).toBe(n);
    };
    await until(2);
    onA.close();
    await until(1);
    expect(presence(watcher)).toEqual(["join:watcher", "join:ann"]);
    onB.close();
    await watcher.waitFor(() => presence(watcher).length === 3, 5000, "ann's leave");
    expect(presence(watcher)).toEqual(["join:watcher", "join:ann", "leave:ann"]);
    await until(undefined);
  });

  it("a draining relay (SIGTERM) announces its members' leave at once, long before the TTL", async () => {
    const shared = { ...env, REDIS_URL: redis.server.url, FANOUT_LOG_PREFIX: "presd", FANOUT_PRESENCE_HEARTBEAT_MS: "60000" };
    const a = await startRelay(shared);
    const b = await startRelay(shared);
    relays.push(b);
    const onA = await openUrl(`${a.base}/v1/events?channel=room:d`, { Authorization: `Bearer ${await token("bob")}` });
    await onA.waitReady();
    const onB = await openUrl(`${b.base}/v1/events?channel=room:d`, { Authorization: `Bearer ${await token("ann")}` });
    await onB.waitFor(() => presence(onB).length === 1, 5000, "own join");
    expect((await get(b.base, "/v1/presence/room:d?stats=1", await token("ann"))).json.users).toBe(2);
    await a.stop();
    await onB.waitFor(() => presence(onB).length === 2, 5000, "bob's leave");
    expect(presence(onB)).toEqual(["join:ann", "leave:bob"]);
  });

  it("a relay killed with SIGKILL: its members expire within the TTL and a surviving relay announces their leave", async () => {
    const shared = { ...env, REDIS_URL: redis.server.url, FANOUT_LOG_PREFIX: "presk", FANOUT_PRESENCE_HEARTBEAT_MS: "200", FANOUT_PRESENCE_TTL_MS: "1000" };
    const port = await freePort();
    const proc = spawn(process.execPath, ["--import", "tsx", "relay/main.ts"], {
      env: { ...process.env, ...shared, PORT: String(port), HOST: "127.0.0.1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    procs.push(proc);
    let out = "";
    proc.stdout!.on("data", (x) => (out += x));
    proc.stderr!.on("data", (x) => (out += x));
    const end = Date.now() + 15_000;
    while (!out.includes("listening")) {
      if (Date.now() > end || proc.exitCode !== null) throw new Error(`relay did not start: ${out}`);
      await sleep(50);
    }
    const doomed = `http://127.0.0.1:${port}`;
    const b = await startRelay(shared);
    relays.push(b);
    const ann = await token("ann");
    const bob = await token("bob");
    const onB = await openUrl(`${b.base}/v1/events?channel=room:k`, { Authorization: `Bearer ${ann}` });
    await onB.waitFor(() => presence(onB).length === 1, 5000, "own join");
    const onDoomed = await openUrl(`${doomed}/v1/events?channel=room:k`, { Authorization: `Bearer ${bob}` });
    await onB.waitFor(() => presence(onB).length === 2, 5000, "bob's join");
    expect((await get(b.base, "/v1/presence/room:k?stats=1", ann)).json.users).toBe(2);

    proc.kill("SIGKILL");
    await onDoomed.waitClosed();
    // Due a TTL (1000 ms) after the last refresh plus one sweep interval (200 ms); the wait
    // allows ten times that for a loaded machine.
    await onB.waitFor(() => presence(onB).length === 3, 10_000, "bob's leave after the crash");
    expect(presence(onB)).toEqual(["join:ann", "join:bob", "leave:bob"]);
    const { json } = await get(b.base, "/v1/presence/room:k", ann);
    expect(json).toEqual({ channel: "room:k", members: [{ sub: "ann", connections: 1 }], anonymous: 0 });
  });
});
