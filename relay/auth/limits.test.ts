import { describe, expect, it } from "vitest";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { relayFixture, type RunningRelay } from "../../test/support/relay-harness.js";
import { brokerModes } from "../../test/support/modes.js";
import { openFrom } from "../../test/support/raw-http.js";
import { signFanoutToken } from "../../protocol/auth/sign-token.js";

const modes = brokerModes();

async function metric(base: string, code: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^fanout_rejected_total\\{code="${code}",relay="[^"]+"\\} (\\d+)`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

describe.each(modes)("limits on the $name", (mode) => {
  let r: RunningRelay;
  const { start, open } = relayFixture();

  it("caps connections in total (429 + Retry-After) and frees the slot on close", async () => {
    r = await start({ ...mode.env(), FANOUT_MAX_CONNECTIONS: "2" });
    const [a, b] = [await open("channel=a"), await open("channel=a")];
    await Promise.all([a.waitReady(), b.waitReady()]);
    const c = await open("channel=a");
    await c.waitClosed();
    expect(c.status).toBe(429);
    expect(JSON.parse(c.body).error.code).toBe("too_many_connections");
    expect(c.headers["retry-after"]).toBeDefined();
    a.close();
    for (let i = 0; i < 100 && r.relay.context.connections.size > 1; i++) await new Promise((res) => setTimeout(res, 20));
    const d = await open("channel=a");
    await d.waitReady();
    expect(await metric(r.base, "too_many_connections")).toBeGreaterThanOrEqual(1);
  });

  it("caps connections per client IP", async () => {
    r = await start({ ...mode.env(), FANOUT_MAX_CONNECTIONS_PER_IP: "2" });
    const held = [await openFrom(r.base, "channel=a", "127.0.0.1"), await openFrom(r.base, "channel=a", "127.0.0.1")];
    expect(held.map((h) => h.status)).toEqual([200, 200]);
    const third = await openFrom(r.base, "channel=a", "127.0.0.1");
    expect(third.status).toBe(429);
    const other = await openFrom(r.base, "channel=a", "127.0.0.2");
    expect(other.status).toBe(200);
    [...held, third, other].forEach((h) => h.close());
    expect(await metric(r.base, "too_many_connections_from_ip")).toBe(1);
  });

  it("caps channels+patterns per connection, pattern length and pattern complexity", async () => {
    r = await start({ ...mode.env(), FANOUT_MAX_SUBSCRIPTIONS: "3", FANOUT_MAX_PATTERN_STARS: "2", FANOUT_MAX_PATTERN_BYTES: "16" });
    for (const [qs, code] of [
      ["channel=a&channel=b&pattern=c*&pattern=d*", "too_many_subscriptions"],
      ["pattern=a*b*c*", "pattern_too_complex"],
      [`pattern=${"x".repeat(17)}*`, "pattern_too_long"],
    ]) {
      const c = await open(qs);
      await c.waitClosed();
      expect(c.status, qs).toBe(400);
      expect(JSON.parse(c.body).error.code).toBe(code);
    }
    const ok = await open("channel=a&pattern=a*b*&pattern=abcdefghijklmno*");
    await ok.waitReady();
    expect(await metric(r.base, "pattern_too_complex")).toBe(1);
  });

  it("keeps matching cheap for the most backtracking-prone pattern allowed", async () => {
    r = await start(mode.env());
    const c = await open(`pattern=${encodeURIComponent("*a*a*a*a*a*a*a*b")}`);
    await c.waitReady();
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) expect((await publish(r.base, { channel: "a".repeat(1000 + i), data: i })).status).toBe(200);
    await publish(r.base, { channel: "a".repeat(500) + "b", data: "match" });
    await c.waitMessages(1);
    // A backtracking matcher would take minutes here; the bound only catches that.
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(c.envelopes().map((e) => e.data)).toEqual(["match"]);
  });

  it("refuses the issue's pattern-cost attack (400 pattern_too_complex) while ordinary patterns pass", async () => {
    r = await start(mode.env());
    // 5 connections × 100 patterns of many `*` runs and a long literal: each pattern alone
    // may cost ~1024 × 120 matching steps per message.
    for (let conn = 0; conn < 5; conn++) {
      const qs = Array.from({ length: 100 }, (_, i) => `pattern=${encodeURIComponent(`*a*a*a*a*a*a*a*${"a".repeat(120)}${conn}-${i}`)}`).join("&");
      const c = await open(qs);
      await c.waitClosed();
      expect([c.status, JSON.parse(c.body).error.code]).toEqual([400, "pattern_too_complex"]);
    }
    // Each pattern fits, but together one connection would cost too much.
    const medium = (tag: string) => `pattern=${encodeURIComponent(`*${"x".repeat(80)}${tag}`)}`;
    const greedy = await open(Array.from({ length: 12 }, (_, i) => medium(`g${i}`)).join("&"));
    await greedy.waitClosed();
    expect([greedy.status, JSON.parse(greedy.body).error.code]).toEqual([400, "pattern_too_complex"]);
    const ordinary = ["user:*:notifications", "chat:[a-z]*", "user:42:*", "orders:*:status:*", "*.created", "room:?:events", "*"];
    const ok = await open([...ordinary.map((p) => `pattern=${encodeURIComponent(p)}`), medium("ok")].join("&"));
    await ok.waitReady();
    await publish(r.base, { channel: "user:7:notifications", data: "n" });
    await ok.waitMessages(1);
    expect(ok.envelopes().map((e) => e.data)).toEqual(["n"]);
    expect(await metric(r.base, "pattern_too_complex")).toBe(6);
  });

  it("bounds the matching cost of all patterns on the relay (503 pattern_budget_exhausted), counting a shared pattern once", async () => {
    r = await start({ ...mode.env(), FANOUT_MAX_RELAY_PATTERN_COST: "200000", FANOUT_MAX_CONNECTION_PATTERN_COST: "200000" });
    const costly = (tag: string) => `pattern=${encodeURIComponent(`*${"x".repeat(80)}${tag}`)}`;
    const a = await open(costly("a"));
    const b = await open(costly("a"));
    const c = await open(costly("c"));
    await Promise.all([a.waitReady(), b.waitReady(), c.waitReady()]);
    const used = r.relay.context.limits.patternCost;
    expect(used).toBeGreaterThan(150_000);
    const d = await open(costly("d"));
    await d.waitClosed();
    expect(d.status).toBe(503);
    expect(JSON.parse(d.body).error.code).toBe("pattern_budget_exhausted");
    expect(d.headers["retry-after"]).toBeDefined();
    // Channels and patterns already open cost nothing more.
    const e = await open(`channel=a&${costly("c")}`);
    await e.waitReady();
    expect(r.relay.context.limits.patternCost).toBe(used);
    // The last stream of a pattern gives its cost back.
    a.close();
    b.close();
    for (let i = 0; i < 100 && r.relay.context.limits.patternCost === used; i++) await new Promise((res) => setTimeout(res, 20));
    const f = await open(costly("d"));
    await f.waitReady();
    expect(await metric(r.base, "pattern_budget_exhausted")).toBe(1);
  });

  it("refuses a ticket whose patterns a connection could not hold (400 pattern_too_complex at issue)", async () => {
    r = await start({ ...mode.env(), FANOUT_PUBLISH_KEYS: "k1" });
    const res = await fetch(`${r.base}/v1/tickets`, {
      method: "POST",
      headers: { Authorization: "Bearer k1", "Content-Type": "application/json" },
      body: JSON.stringify({ patterns: [`*${"a".repeat(200)}b`] }),
    });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe("pattern_too_complex");
  });

  it("refuses oversized bodies (413) and batches (400)", async () => {
    r = await start({ ...mode.env(), FANOUT_MAX_BODY_BYTES: "1024", FANOUT_MAX_BATCH: "2" });
    const big = await publish(r.base, { channel: "a", data: "x".repeat(2000) });
    expect([big.status, big.json.error.code]).toEqual([413, "payload_too_large"]);
    const batch = await publish(r.base, { messages: [1, 2, 3].map((i) => ({ channel: "a", data: i })) });
    expect([batch.status, batch.json.error.code]).toEqual([400, "batch_too_large"]);
  });

  it("rate-limits publishing per key with 429 and Retry-After, each key on its own bucket", async () => {
    const secret = "rate-secret-0123456789abcdef0123456789";
    r = await start({ ...mode.env(), FANOUT_PUBLISH_KEYS: "k1,k2", FANOUT_JWT_SECRET: secret, FANOUT_PUBLISH_RATE: "2" });
    const k1 = { Authorization: "Bearer k1" };
    expect((await publish(r.base, { channel: "a", data: 1 }, k1)).status).toBe(200);
    expect((await publish(r.base, { channel: "a", data: 2 }, k1)).status).toBe(200);
    const limited = await publish(r.base, { channel: "a", data: 3 }, k1);
    expect(limited.status).toBe(429);
    expect(limited.json.error.code).toBe("rate_limited");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await publish(r.base, { channel: "a", data: 4 }, { Authorization: "Bearer k2" })).status).toBe(200);
    // Tokens are limited per subject.
    const jwt = await signFanoutToken(secret, { publish: ["*"] }, { subject: "svc-1" });
    const other = await signFanoutToken(secret, { publish: ["*"] }, { subject: "svc-1" });
    expect((await publish(r.base, { messages: [{ channel: "a", data: 5 }, { channel: "a", data: 6 }] }, { Authorization: `Bearer ${jwt}` })).status).toBe(200);
    expect((await publish(r.base, { channel: "a", data: 7 }, { Authorization: `Bearer ${other}` })).status).toBe(429);
    // The bucket refills at the configured rate.
    await new Promise((res) => setTimeout(res, Number(limited.headers.get("retry-after")) * 1000));
    expect((await publish(r.base, { channel: "a", data: 8 }, k1)).status).toBe(200);
    expect(await metric(r.base, "rate_limited")).toBe(2);
  });
});
