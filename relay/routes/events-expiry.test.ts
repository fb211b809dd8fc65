import { describe, expect, it } from "vitest";
import { publish, requestTicket } from "../../test/support/sse-client.js";
import { relayFixture } from "../../test/support/relay-harness.js";
import { brokerModes } from "../../test/support/modes.js";
import { signFanoutToken } from "../../protocol/auth/sign-token.js";

const SECRET = "expiry-test-secret-0123456789abcdef01";
const KEY = "pk-expiry-key";
const key = { Authorization: `Bearer ${KEY}` };
const modes = brokerModes();

/** A token's `exp` in ms (whole seconds, as the relay reads it). */
function expOf(jwt: string): number {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString()).exp * 1000;
}

describe.each(modes)("streams end when their credential expires, on the $name", (mode) => {
  const fx = relayFixture();
  const start = (env: Record<string, string> = {}) => fx.start({ FANOUT_JWT_SECRET: SECRET, FANOUT_PUBLISH_KEYS: KEY, ...mode.env(), ...env });
  const open = (base: string, qs: string, headers?: Record<string, string>) => fx.openUrl(`${base}/v1/events?${qs}`, headers);

  it("a JWT stream gets messages, then `expired` at the token's exp, and is closed", async () => {
    const r = await start();
    const jwt = await signFanoutToken(SECRET, { subscribe: ["room:*"] }, { expiresIn: 2 });
    const c = await open(r.base, "channel=room:1", { Authorization: `Bearer ${jwt}` });
    await c.waitReady();
    await publish(r.base, { channel: "room:1", data: 1 }, key);
    await c.waitMessages(1);
    await c.waitClosed(10_000);
    const closedAt = Date.now();
    const last = c.events[c.events.length - 1];
    expect(last.event).toBe("expired");
    expect(JSON.parse(last.data)).toEqual({ reason: "token_expired" });
    expect(c.envelopes()[0].data).toBe(1);
    // Not before exp; the upper bound is only the waitClosed guard above.
    expect(closedAt).toBeGreaterThanOrEqual(expOf(jwt) - 50);
  });

  it("a `?token=` stream expires too; a reconnection with the same token is refused with token_expired", async () => {
    const r = await start({ FANOUT_JWT_CLOCK_SKEW: "0" });
    const jwt = await signFanoutToken(SECRET, { subscribe: ["room:*"] }, { expiresIn: 2 });
    const c = await open(r.base, `channel=room:1&token=${jwt}`);
    await c.waitReady();
    await c.waitClosed(10_000);
    expect(c.events[c.events.length - 1].event).toBe("expired");
    const again = await open(r.base, `channel=room:1&token=${jwt}`);
    await again.waitClosed();
    expect(again.status).toBe(401);
    expect(JSON.parse(again.body).error.code).toBe("token_expired");
  });

  it("with FANOUT_STREAM_EXPIRY=off a JWT stream stays open past its exp", async () => {
    const r = await start({ FANOUT_STREAM_EXPIRY: "off" });
    const jwt = await signFanoutToken(SECRET, { subscribe: ["room:*"] }, { expiresIn: 1 });
    const c = await open(r.base, "channel=room:1", { Authorization: `Bearer ${jwt}` });
    await c.waitReady();
    await new Promise((res) => setTimeout(res, Math.max(0, expOf(jwt) - Date.now()) + 1000));
    await publish(r.base, { channel: "room:1", data: "after exp" }, key);
    await c.waitMessages(1);
    expect(c.closed).toBe(false);
    expect(c.events.some((e) => e.event === "expired")).toBe(false);
  });

  it("a ticket minted by a short-lived JWT opens a stream that ends at the JWT's exp", async () => {
    const r = await start();
    const jwt = await signFanoutToken(SECRET, { subscribe: ["room:*"] }, { expiresIn: 3 });
    const res = await requestTicket(r.base, { channels: ["room:1"] }, { Authorization: `Bearer ${jwt}` });
    expect(res.status).toBe(200);
    const { ticket } = res.json as { ticket: string };
    const c = await open(r.base, `channel=room:1&ticket=${ticket}`);
    await c.waitReady();
    await publish(r.base, { channel: "room:1", data: 1 }, key);
    await c.waitMessages(1);
    await c.waitClosed(10_000);
    expect(Date.now()).toBeGreaterThanOrEqual(expOf(jwt) - 50);
    expect(c.events[c.events.length - 1].event).toBe("expired");
  });

  it("a stream opened with a key or a key's ticket has no end", async () => {
    const r = await start();
    const { ticket } = (await requestTicket(r.base, { channels: ["room:1"], ttl: 1 }, key)).json as { ticket: string };
    const viaTicket = await open(r.base, `channel=room:1&ticket=${ticket}`);
    const viaKey = await open(r.base, "channel=room:1", key);
    await viaTicket.waitReady();
    await viaKey.waitReady();
    await new Promise((res) => setTimeout(res, 1500));
    await publish(r.base, { channel: "room:1", data: 1 }, key);
    await viaTicket.waitMessages(1);
    await viaKey.waitMessages(1);
    expect(viaTicket.closed || viaKey.closed).toBe(false);
  });
});
