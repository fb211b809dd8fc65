import { describe, expect, it } from "vitest";
import { publish, requestTicket } from "../../test/support/sse-client.js";
import { relayFixture } from "../../test/support/relay-harness.js";
import { brokerModes } from "../../test/support/modes.js";
import { signFanoutToken } from "../../protocol/auth/sign-token.js";
import { SignJWT, decodeJwt } from "jose";

const SECRET = "ticket-test-secret-0123456789abcdef012";
const KEY = "pk-ticket-key";
const key = { Authorization: `Bearer ${KEY}` };
const modes = brokerModes();

const ticket = (base: string, body: unknown, headers: Record<string, string> = key) => requestTicket(base, body, headers);

describe.each(modes)("subscribe tickets on the $name", (mode) => {
  const fx = relayFixture();
  const start = (env: Record<string, string>) => fx.start({ FANOUT_JWT_SECRET: SECRET, FANOUT_PUBLISH_KEYS: KEY, ...env });
  const open = (base: string, qs: string, headers?: Record<string, string>) => fx.openUrl(`${base}/v1/events?${qs}`, headers);

  it("issues a ticket to a key holder that opens its channels exactly once", async () => {
    const r = await start(mode.env());
    const t = await ticket(r.base, { channels: ["orders"], patterns: ["user:42:*"] });
    expect(t.status).toBe(200);
    expect(t.json.ticket).toMatch(/^fto_/);
    expect(t.json.expiresIn).toBe(30);
    expect(t.headers.get("cache-control")).toBe("no-store");
    const c = await open(r.base, `channel=orders&pattern=user:42:*&ticket=${t.json.ticket}`);
    await c.waitReady();
    await publish(r.base, { channel: "user:42:x", data: 1 }, key);
    await c.waitMessages(1);
    const again = await open(r.base, `channel=orders&ticket=${t.json.ticket}`);
    await again.waitClosed();
    expect(again.status).toBe(401);
    expect(JSON.parse(again.body).error.code).toBe("invalid_ticket");
  });

  it("confines a ticket to its scope: a subset opens, anything else is 403", async () => {
    const r = await start(mode.env());
    const sub = await ticket(r.base, { channels: ["a", "b"], patterns: ["p:*"] });
    const c = await open(r.base, `channel=a&pattern=p:x*&ticket=${sub.json.ticket}`);
    await c.waitReady();
    for (const qs of ["channel=c", "pattern=*", "channel=a&channel=z", "pattern=p*"]) {
      const t = await ticket(r.base, { channels: ["a", "b"], patterns: ["p:*"] });
      const x = await open(r.base, `${qs}&ticket=${t.json.ticket}`);
      await x.waitClosed();
      expect(x.status, qs).toBe(403);
    }
  });

  it("expires a ticket after its ttl", async () => {
    const r = await start(mode.env());
    const t = await ticket(r.base, { channels: ["a"], ttl: 1 });
    expect(t.json.expiresIn).toBe(1);
    await new Promise((res) => setTimeout(res, 1300));
    const c = await open(r.base, `channel=a&ticket=${t.json.ticket}`);
    await c.waitClosed();
    expect(c.status).toBe(401);
  });

  it("issues tickets to a JWT holder only within its subscribe grants, and to nobody anonymous", async () => {
    const r = await start(mode.env());
    const jwt = await signFanoutToken(SECRET, { subscribe: ["user:42:*"] });
    const auth = { Authorization: `Bearer ${jwt}` };
    expect((await ticket(r.base, { channels: ["user:42:a"], patterns: ["user:42:n*"] }, auth)).status).toBe(200);
    expect((await ticket(r.base, { channels: ["user:42:a"] }, { Cookie: `fanout_token=${jwt}` })).status).toBe(200);
    expect((await ticket(r.base, { channels: ["user:43:a"] }, auth)).status).toBe(403);
    expect((await ticket(r.base, { patterns: ["user:*"] }, auth)).status).toBe(403);
    expect((await ticket(r.base, { channels: ["a"] }, {})).status).toBe(401);
    expect((await ticket(r.base, { channels: ["a"] }, { Authorization: "Bearer wrong" })).status).toBe(401);
    expect((await ticket(r.base, { channels: ["a"], ttl: 100000 })).status).toBe(400);
    expect((await ticket(r.base, { nope: 1 })).status).toBe(400);
    expect((await ticket(r.base, "[")).status).toBe(400);
    // Bogus tickets are 401, never 5xx.
    for (const bogus of ["", "x", "fto_", `fto_${"A".repeat(43)}`]) {
      const c = await open(r.base, `channel=a&ticket=${bogus}`);
      await c.waitClosed();
      expect(c.status, bogus).toBe(401);
    }
    // Not percent-encoded UTF-8: refused before anything is looked up.
    const badEncoding = await open(r.base, "channel=a&ticket=%ff");
    await badEncoding.waitClosed();
    expect(badEncoding.status).toBe(400);
    expect(JSON.parse(badEncoding.body).error.code).toBe("invalid_encoding");
  });

  it("ends a ticket when the token that minted it expires, whatever ttl was asked for", async () => {
    const r = await start(mode.env());
    const jwt = await signFanoutToken(SECRET, { subscribe: ["a"] }, { expiresIn: 3 });
    const expMs = decodeJwt(jwt).exp! * 1000;
    const t = await ticket(r.base, { channels: ["a"], ttl: 300 }, { Authorization: `Bearer ${jwt}` });
    expect(t.status).toBe(200);
    expect(t.json.expiresIn).toBeGreaterThanOrEqual(1);
    expect(t.json.expiresIn).toBeLessThanOrEqual(3);
    await new Promise((res) => setTimeout(res, Math.max(0, expMs - Date.now()) + 200));
    const c = await open(r.base, `channel=a&ticket=${t.json.ticket}`);
    await c.waitClosed();
    expect(c.status).toBe(401);
    expect(JSON.parse(c.body).error.code).toBe("invalid_ticket");
    // A key has no expiry of its own: its tickets keep the ttl asked for.
    expect((await ticket(r.base, { channels: ["a"], ttl: 300 })).json.expiresIn).toBe(300);
  });

  it("refuses a subscriber token without exp, for streams and for tickets, unless FANOUT_JWT_REQUIRE_EXP=false", async () => {
    const noExp = await new SignJWT({ fanout: { subscribe: ["a"], publish: ["a"] } }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));
    const auth = { Authorization: `Bearer ${noExp}` };
    const r = await start(mode.env());
    const t = await ticket(r.base, { channels: ["a"] }, auth);
    expect(t.status).toBe(401);
    expect(t.json.error.code).toBe("token_missing_exp");
    const c = await open(r.base, "channel=a", auth);
    await c.waitClosed();
    expect(c.status).toBe(401);
    expect(JSON.parse(c.body).error.code).toBe("token_missing_exp");
    // Publishing is a server's job: a service token without exp still may.
    expect((await publish(r.base, { channel: "a", data: 1 }, auth)).status).toBe(200);

    const lax = await start({ ...mode.env(), FANOUT_JWT_REQUIRE_EXP: "false" });
    expect((await ticket(lax.base, { channels: ["a"] }, auth)).json.expiresIn).toBe(30);
    const ok = await open(lax.base, "channel=a", auth);
    await ok.waitReady();
    expect(ok.status).toBe(200);
  });

  if (mode.name === "redis broker") {
    it("is single use across relays sharing Redis", async () => {
      const env = mode.env();
      const a = await start(env);
      const b = await start(env);
      const t = await ticket(a.base, { channels: ["x"] });
      const onB = await open(b.base, `channel=x&ticket=${t.json.ticket}`);
      await onB.waitReady();
      const onA = await open(a.base, `channel=x&ticket=${t.json.ticket}`);
      await onA.waitClosed();
      expect(onA.status).toBe(401);
      // Concurrent use of one ticket: exactly one wins.
      const t2 = await ticket(a.base, { channels: ["x"] });
      const race = await Promise.all([a, b, a, b].map((r) => open(r.base, `channel=x&ticket=${t2.json.ticket}`)));
      await new Promise((res) => setTimeout(res, 300));
      expect(race.filter((c) => c.status === 200)).toHaveLength(1);
      expect(race.filter((c) => c.status === 401)).toHaveLength(3);
    });
  }
});
