import { describe, expect, it } from "vitest";
import { SignJWT } from "jose";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { relayFixture, type RunningRelay } from "../../test/support/relay-harness.js";
import { brokerModes } from "../../test/support/modes.js";
import { signFanoutToken } from "../../protocol/auth/sign-token.js";

const SECRET = "relay-test-secret-0123456789abcdef0123";
const KEY = "pk-test-key";
const modes = brokerModes();
const enc = new TextEncoder();
const now = () => Math.floor(Date.now() / 1000);
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
const settle = () => new Promise((r) => setTimeout(r, 150));

describe.each(modes)("JWT auth on the $name", (mode) => {
  let r: RunningRelay;
  const { start: startBare, open } = relayFixture();
  const start = (env: Record<string, string> = {}) => startBare({ ...mode.env(), FANOUT_JWT_SECRET: SECRET, FANOUT_PUBLISH_KEYS: KEY, ...env });
  const key = { Authorization: `Bearer ${KEY}` };

  it("refuses subscribers with a missing, expired, not-yet-valid, forged, alg:none or wrong-alg token (401)", async () => {
    r = await start();
    const claims = { fanout: { subscribe: ["*"] } };
    const tokens: Record<string, string | undefined> = {
      missing: undefined,
      expired: await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() - 60).sign(enc.encode(SECRET)),
      notYetValid: await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setNotBefore(now() + 60).sign(enc.encode(SECRET)),
      forged: await signFanoutToken("not-the-secret", { subscribe: ["*"] }),
      algNone: `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`,
      wrongAlg: await new SignJWT(claims).setProtectedHeader({ alg: "HS384" }).sign(enc.encode(SECRET)),
      garbage: "not-a-token",
    };
    for (const [name, t] of Object.entries(tokens)) {
      const ways: Array<[string, Record<string, string>]> = t === undefined ? [["", {}]] : [
        ["", { Authorization: `Bearer ${t}` }],
        [`&token=${encodeURIComponent(t)}`, {}],
        ["", { Cookie: `fanout_token=${t}` }],
      ];
      for (const [qs, headers] of ways) {
        const c = await open(`channel=a${qs}`, headers);
        await c.waitClosed();
        expect(c.status, `${name} ${qs} ${JSON.stringify(headers).slice(0, 30)}`).toBe(401);
        expect(JSON.parse(c.body).error.code).toMatch(/unauthorized|invalid_token|token_expired|token_not_yet_valid/);
        expect(c.events).toHaveLength(0);
      }
    }
  });

  it("accepts a token from the Authorization header, ?token= or the fanout_token cookie", async () => {
    r = await start();
    const t = await signFanoutToken(SECRET, { subscribe: ["room:*"] });
    for (const [qs, headers] of [["", { Authorization: `Bearer ${t}` }], [`&token=${t}`, {}], ["", { Cookie: `theme=dark; fanout_token=${t}` }]] as const) {
      const c = await open(`channel=room:1${qs}`, headers);
      await c.waitReady();
      expect(c.status).toBe(200);
    }
  });

  it("refuses channels and patterns outside the claim with 403 and never delivers their messages", async () => {
    r = await start();
    const t = await signFanoutToken(SECRET, { subscribe: ["user:42:*", "news"] });
    const auth = { Authorization: `Bearer ${t}` };
    const watcher = await open("pattern=*", key);
    const mine = await open("channel=user:42:inbox&channel=news&pattern=user:42:*", auth);
    await Promise.all([watcher.waitReady(), mine.waitReady()]);
    const refused = [
      "channel=user:43:inbox",
      "channel=user:42:inbox&channel=user:43:inbox",
      "pattern=user:*",
      "pattern=user:4?:*",
      "pattern=user:42*",
      "pattern=*",
      "channel=news&pattern=news*",
    ];
    const forbidden: SseClient[] = [];
    for (const qs of refused) {
      const c = await open(qs, auth);
      await c.waitClosed();
      expect(c.status, qs).toBe(403);
      expect(JSON.parse(c.body).error.code).toMatch(/^forbidden_(channel|pattern)$/);
      forbidden.push(c);
    }
    for (const ch of ["user:43:inbox", "user:420", "newsflash", "user:42:inbox", "news"]) {
      expect((await publish(r.base, { channel: ch, data: ch }, key)).status).toBe(200);
    }
    await watcher.waitMessages(5);
    await mine.waitMessages(2);
    await settle();
    expect(mine.envelopes().map((e) => e.channel).sort()).toEqual(["news", "user:42:inbox"]);
    for (const c of forbidden) expect(c.events).toHaveLength(0);
  });

  it("lets a token publish only where its publish globs allow; a batch with one forbidden channel publishes nothing", async () => {
    r = await start();
    const watcher = await open("pattern=*", key);
    await watcher.waitReady();
    const t = await signFanoutToken(SECRET, { publish: ["chat:*"], subscribe: ["*"] }, { subject: "svc" });
    const auth = { Authorization: `Bearer ${t}` };
    expect((await publish(r.base, { channel: "chat:1", data: 1 }, auth)).status).toBe(200);
    const denied = await publish(r.base, { channel: "orders", data: 2 }, auth);
    expect(denied.status).toBe(403);
    expect(denied.json.error.code).toBe("forbidden_channel");
    const batch = await publish(r.base, { messages: [{ channel: "chat:2", data: 3 }, { channel: "admin", data: 4 }, { channel: "chat:3", data: 5 }] }, auth);
    expect(batch.status).toBe(403);
    const subOnly = await signFanoutToken(SECRET, { subscribe: ["*"] });
    expect((await publish(r.base, { channel: "chat:1", data: 6 }, { Authorization: `Bearer ${subOnly}` })).status).toBe(403);
    const expired = await new SignJWT({ fanout: { publish: ["*"] } }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() - 60).sign(enc.encode(SECRET));
    expect((await publish(r.base, { channel: "chat:1", data: 7 }, { Authorization: `Bearer ${expired}` })).json.error.code).toBe("token_expired");
    expect((await publish(r.base, { channel: "chat:1", data: 8 })).status).toBe(401);
    expect((await publish(r.base, { channel: "chat:1", data: 9 }, { Authorization: "Basic abc" })).status).toBe(401);
    expect((await publish(r.base, { channel: "x", data: "marker" }, key)).status).toBe(200);
    await watcher.waitMessages(2);
    await settle();
    expect(watcher.envelopes().map((e) => e.data)).toEqual([1, "marker"]);
  });

  it("opens FANOUT_PUBLIC_CHANNELS to anonymous subscribers, and only those", async () => {
    r = await start({ FANOUT_PUBLIC_CHANNELS: "public:*,status" });
    for (const qs of ["channel=public:news", "channel=status", "pattern=public:*", "pattern=public:a?"]) {
      const c = await open(qs);
      await c.waitReady();
      expect(c.status, qs).toBe(200);
    }
    for (const qs of ["channel=private", "pattern=p*", "channel=public:a&channel=private", "pattern=*"]) {
      const c = await open(qs);
      await c.waitClosed();
      expect(c.status, qs).toBe(401);
    }
    // A token adds its own channels to the public ones.
    const t = await signFanoutToken(SECRET, { subscribe: ["me"] });
    const both = await open("channel=me&channel=public:x&channel=status", { Authorization: `Bearer ${t}` });
    await both.waitReady();
    const c = await open("channel=private", { Authorization: `Bearer ${t}` });
    await c.waitClosed();
    expect(c.status).toBe(403);
  });

  it("keeps subscribing open without a JWT key, unless public channels are set", async () => {
    r = await startBare({ ...mode.env(), FANOUT_PUBLISH_KEYS: KEY });
    const open1 = await open("channel=anything&pattern=*");
    await open1.waitReady();
    await r.stop();
    r = await startBare({ ...mode.env(), FANOUT_PUBLIC_CHANNELS: "public:*" });
    const pub = await open("channel=public:1");
    await pub.waitReady();
    const priv = await open("channel=private");
    await priv.waitClosed();
    expect(priv.status).toBe(401);
  });

  it("needs a credential from loopback too once a JWT key is configured", async () => {
    r = await startBare({ ...mode.env(), FANOUT_JWT_SECRET: SECRET });
    expect((await publish(r.base, { channel: "a", data: 1 })).status).toBe(401);
    const t = await signFanoutToken(SECRET, { publish: ["a"] });
    expect((await publish(r.base, { channel: "a", data: 1 }, { Authorization: `Bearer ${t}` })).status).toBe(200);
  });
});
