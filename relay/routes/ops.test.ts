import { afterEach, describe, expect, it } from "vitest";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { relayFixture, startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { signFanoutToken } from "../../protocol/auth/sign-token.js";

describe("operations endpoints", () => {
  let r: RunningRelay;
  afterEach(async () => {
    await r?.stop();
  });

  it("serve health, readiness, Prometheus metrics and stats", async () => {
    r = await startRelay();
    expect(await (await fetch(`${r.base}/healthz`)).json()).toEqual({ status: "ok" });
    expect((await fetch(`${r.base}/readyz`)).status).toBe(200);
    const c = await SseClient.open(`${r.base}/v1/events?channel=s1&channel=s2&pattern=p:*`);
    const c2 = await SseClient.open(`${r.base}/v1/events?channel=s1`);
    await Promise.all([c.waitReady(), c2.waitReady()]);
    await publish(r.base, { channel: "s1", data: 1 });
    await publish(r.base, { channel: "p:1", data: 2 });
    await c.waitMessages(2);
    await c2.waitMessages(1);

    const stats = await (await fetch(`${r.base}/v1/stats`)).json();
    expect(stats).toMatchObject({ broker: "memory", ready: true, connections: 2, channels: { s1: 2, s2: 1 }, patterns: { "p:*": 1 } });
    expect(stats.messages.published).toBe(2);
    expect(stats.rates.outPerSecond).toBeGreaterThan(0);

    const res = await fetch(`${r.base}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^fanout_connections\{relay="[^"]+"\} 2$/m);
    expect(text).toMatch(/^fanout_broker_subscriptions\{kind="channel",relay="[^"]+"\} 2$/m);
    expect(text).toMatch(/^fanout_messages_out_total\{relay="[^"]+"\} 3$/m);
    expect(text).toMatch(/^fanout_publish_to_write_seconds_count\{relay="[^"]+"\} 2$/m);
    expect(text).toMatch(/^fanout_process_resident_memory_bytes\{relay="[^"]+"\} /m);
    c.close();
    c2.close();
  });

  it("answers unknown routes with a JSON 404", async () => {
    r = await startRelay();
    const res = await fetch(`${r.base}/nope`);
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe("not_found");
  });
});

describe("operations endpoints with auth configured", () => {
  const SECRET = "ops-test-secret-0123456789abcdef012345";
  const KEY = "pk-ops-key";
  const SECRET_NAME = "user:7:reset-token-5f2a9c";
  const { start, open } = relayFixture();
  const key = { Authorization: `Bearer ${KEY}` };
  const stats = async (base: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}/v1/stats`, { headers });
    const text = await res.text();
    return { status: res.status, text, json: JSON.parse(text), headers: res.headers };
  };

  it("give anonymous callers totals only: names need a publisher key or a JWT with fanout.admin", async () => {
    const r = await start({ FANOUT_PUBLISH_KEYS: KEY, FANOUT_JWT_SECRET: SECRET });
    const c = await open(`channel=${SECRET_NAME}&pattern=user:7:*`, key);
    await c.waitReady();

    const anon = await stats(r.base);
    expect(anon.status).toBe(200);
    expect(anon.text).not.toContain("reset-token");
    expect(anon.text).not.toContain("user:7");
    expect(anon.json).toMatchObject({ ready: true, connections: 1, subscriptions: { channels: 1, patterns: 1 } });
    expect(anon.json.channels).toBeUndefined();
    expect(anon.json.patterns).toBeUndefined();
    expect(anon.headers.get("cache-control")).toBe("no-store");

    const withKey = await stats(r.base, key);
    expect(withKey.json).toMatchObject({ channels: { [SECRET_NAME]: 1 }, patterns: { "user:7:*": 1 }, subscriptions: { channels: 1, patterns: 1 } });
    const admin = await signFanoutToken(SECRET, { admin: true });
    expect((await stats(r.base, { Authorization: `Bearer ${admin}` })).json.channels).toEqual({ [SECRET_NAME]: 1 });

    // A credential that is presented is checked: refused outright, never downgraded to totals.
    const notAdmin = await signFanoutToken(SECRET, { subscribe: ["*"], publish: ["*"] });
    const refused = await stats(r.base, { Authorization: `Bearer ${notAdmin}` });
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe("admin_required");
    const expired = await signFanoutToken(SECRET, { admin: true }, { expiresIn: -60 });
    for (const [headers, code] of [
      [{ Authorization: "Bearer wrong-key" }, "unauthorized"],
      [{ Authorization: `Bearer ${expired}` }, "token_expired"],
      [{ Authorization: `Bearer ${await signFanoutToken("another-secret-0123456789abcdef0123", { admin: true })}` }, "invalid_token"],
      [{ Authorization: "Basic abc" }, "unauthorized"],
    ] as const) {
      const res = await stats(r.base, headers);
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.json.error.code).toBe(code);
      expect(res.text).not.toContain("reset-token");
    }
    // The cookie and ?token= are subscriber credentials, not operator ones.
    expect((await stats(r.base, { Cookie: `fanout_token=${admin}` })).json.channels).toBeUndefined();
    expect((await fetch(`${r.base}/healthz`)).status).toBe(200);
    expect((await fetch(`${r.base}/readyz`)).status).toBe(200);
  });

  it("with only public channels configured, name channels to loopback callers (who alone may publish)", async () => {
    const r = await start({ FANOUT_PUBLIC_CHANNELS: "public:*" });
    const c = await open("channel=public:a");
    await c.waitReady();
    expect((await stats(r.base)).json.channels).toEqual({ "public:a": 1 });
  });

  it("/metrics labels never carry a channel, pattern, token or client address", async () => {
    const r = await start({ FANOUT_PUBLISH_KEYS: KEY, FANOUT_JWT_SECRET: SECRET });
    const token = await signFanoutToken(SECRET, { subscribe: ["user:7:*"] });
    const c = await open(`channel=${SECRET_NAME}&pattern=user:7:*&token=${token}`);
    await c.waitReady();
    await publish(r.base, { channel: SECRET_NAME, data: 1 }, key);
    await c.waitMessages(1);
    // Refusals are counted by code: make some, with secrets in every place a label could come from.
    const refused = await open(`channel=user:8:reset-token-x&token=${token}`);
    await refused.waitClosed();
    expect(refused.status).toBe(403);
    expect((await publish(r.base, { channel: SECRET_NAME, data: 1 }, { Authorization: "Bearer reset-token-guess" })).status).toBe(401);
    const stale = await open(`channel=${SECRET_NAME}`, { ...key, "Last-Event-ID": "reset-token" });
    await stale.waitReady();
    const text = await (await fetch(`${r.base}/metrics`)).text();
    expect(text).toMatch(/^fanout_rejected_total\{code="forbidden_channel",relay="[^"]+"\} 1$/m);
    for (const secret of ["reset-token", "user:7", "user:8", token.slice(0, 20), KEY, "127.0.0.1"]) expect(text).not.toContain(secret);
  });
});
