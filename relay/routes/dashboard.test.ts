import { describe, expect, it } from "vitest";
import { SignJWT } from "jose";
import { brokerModes } from "../../test/support/modes.js";
import { SseClient } from "../../test/support/sse-client.js";
import { relayFixture, startRelay } from "../../test/support/relay-harness.js";

const FAST = { FANOUT_FLEET_HEARTBEAT_MS: "100", FANOUT_FLEET_TTL_MS: "1000" };
const KEY = "pk-dashboard-ops";

const fx = relayFixture();
const start = (env: Record<string, string>) => fx.start({ ...FAST, ...env });
const open = fx.openUrl;
const snapshots = (c: SseClient) => c.events.filter((e) => e.event === "stats").map((e) => JSON.parse(e.data));

describe.each(brokerModes())("GET /v1/stats/stream, $name", (mode) => {
  it("streams the fleet stats and alerts once a second, as /v1/stats?scope=fleet and /v1/alerts give them", async () => {
    const r = await start({ ...mode.env(), FANOUT_RELAY_ID: "relay-s", FANOUT_ALERT_CHANNEL_SUBSCRIBERS: "1" });
    await open(`${r.base}/v1/events?channel=room:1`);
    await open(`${r.base}/v1/events?channel=room:1`);
    const s = await open(`${r.base}/v1/stats/stream`);
    expect(s.status).toBe(200);
    expect(s.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(s.headers["cache-control"]).toBe("no-store");
    await s.waitFor((c) => snapshots(c).some((x) => x.alerts.alerts.length === 1), 15_000, "the subscriber alert in the stream");
    await s.waitFor((c) => snapshots(c).length >= 3, 15_000, "three snapshots");
    const last = snapshots(s).at(-1);
    expect(last.access).toBe("names");
    expect(last.stats.scope).toBe("fleet");
    expect(last.stats.relays.map((x: { id: string }) => x.id)).toEqual(["relay-s"]);
    expect(last.stats.totals.connections).toBe(2);
    expect(last.stats.topChannels).toContainEqual(expect.objectContaining({ kind: "channel", name: "room:1", subscribers: 2 }));
    expect(last.alerts.alerts[0]).toMatchObject({ kind: "channel_subscribers", subject: "channel:room:1", relay: "relay-s" });
    // Same shape as the JSON endpoints.
    const fleet = await (await fetch(`${r.base}/v1/stats?scope=fleet`)).json();
    expect(Object.keys(last.stats).sort()).toEqual(Object.keys(fleet).sort());
    const alerts = await (await fetch(`${r.base}/v1/alerts`)).json();
    expect(Object.keys(last.alerts).sort()).toEqual(Object.keys(alerts).sort());
    // The stream is not a client connection: it is not counted among them.
    expect((await (await fetch(`${r.base}/v1/stats`)).json()).connections).toBe(2);
  });

  it("with auth on: totals only without the key (even with it in the URL), names with it as a Bearer header, 401 for a wrong one", async () => {
    const r = await start({ ...mode.env(), FANOUT_PUBLISH_KEYS: KEY, FANOUT_RELAY_ID: "relay-secret", FANOUT_ALERT_CHANNEL_SUBSCRIBERS: "1" });
    const auth = { Authorization: `Bearer ${KEY}` };
    await open(`${r.base}/v1/events?channel=user:7:reset-token-5f2a9c`, auth);
    await open(`${r.base}/v1/events?channel=user:7:reset-token-5f2a9c`, auth);
    const named = await open(`${r.base}/v1/stats/stream`, auth);
    await named.waitFor((c) => snapshots(c).some((x) => x.alerts.alerts.length === 1), 15_000, "the alert");
    expect(JSON.stringify(snapshots(named).at(-1))).toContain("reset-token-5f2a9c");

    for (const url of [`${r.base}/v1/stats/stream`, `${r.base}/v1/stats/stream?key=${KEY}`, `${r.base}/v1/stats/stream?token=${KEY}`]) {
      const anon = await open(url);
      await anon.waitFor((c) => snapshots(c).some((x) => x.alerts.alerts.length === 1), 15_000, "the alert, redacted");
      const snap = snapshots(anon).at(-1);
      expect(snap.access).toBe("totals");
      expect(snap.stats.totals.connections).toBe(2);
      expect(snap.alerts.alerts[0].kind).toBe("channel_subscribers");
      const text = anon.body + JSON.stringify(snapshots(anon));
      for (const secret of ["reset-token", "relay-secret", "topChannels", '"host"', '"subject"']) expect(text).not.toContain(secret);
    }

    const wrong = await open(`${r.base}/v1/stats/stream`, { Authorization: "Bearer not-the-key" });
    await wrong.waitClosed();
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.body).error.code).toBe("unauthorized");
  });

  it("refuses streams beyond 64 with 429, and forgets a stream its reader closed", async () => {
    const r = await start(mode.env());
    const held = await Promise.all(Array.from({ length: 64 }, () => open(`${r.base}/v1/stats/stream`)));
    await Promise.all(held.map((s) => s.waitFor((c) => snapshots(c).length >= 1, 15_000, "a snapshot")));
    const over = await fetch(`${r.base}/v1/stats/stream`);
    expect(over.status).toBe(429);
    expect((await over.json()).error.code).toBe("too_many_connections");
    held.forEach((s) => s.close());
    for (let i = 0; i < 70; i++) {
      const s = await SseClient.open(`${r.base}/v1/stats/stream`);
      await s.waitFor((c) => snapshots(c).length >= 1, 15_000, `snapshot ${i}`);
      s.close();
    }
    const s = await open(`${r.base}/v1/stats/stream`);
    await s.waitFor((c) => snapshots(c).length >= 1, 15_000, "a snapshot after 70 closed streams");
    expect(s.status).toBe(200);
  });

  it("ends open streams when the relay drains, and refuses new ones", async () => {
    const r = await startRelay({ ...FAST, ...mode.env() });
    const s = await open(`${r.base}/v1/stats/stream`);
    await s.waitFor((c) => snapshots(c).length >= 1, 15_000, "a snapshot");
    r.relay.context.draining = true;
    await s.waitClosed(15_000);
    const late = await fetch(`${r.base}/v1/stats/stream`);
    expect(late.status).toBe(503);
    expect((await late.json()).error.code).toBe("broker_unavailable");
    await r.stop();
  });
});

describe("GET /v1/stats/stream with JWTs", () => {
  it("ends an operator's stream when the admin JWT it was opened with expires (the page then asks again)", async () => {
    const SECRET = "dashboard-test-secret-0123456789abcdef";
    const r = await start({ FANOUT_JWT_SECRET: SECRET, FANOUT_JWT_CLOCK_SKEW: "0" });
    const sign = (claims: Record<string, unknown>, exp: number) =>
      new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setExpirationTime(exp).sign(new TextEncoder().encode(SECRET));
    const exp = Math.floor(Date.now() / 1000) + 2;
    const s = await open(`${r.base}/v1/stats/stream`, { Authorization: `Bearer ${await sign({ fanout: { admin: true } }, exp)}` });
    await s.waitFor((c) => snapshots(c).length >= 1, 15_000, "a snapshot");
    expect(snapshots(s)[0].access).toBe("names");
    await s.waitClosed(15_000);
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
    // A JWT without the admin claim may not open one.
    const user = await fetch(`${r.base}/v1/stats/stream`, { headers: { Authorization: `Bearer ${await sign({ fanout: { subscribe: ["*"] } }, exp + 600)}` } });
    expect(user.status).toBe(403);
    expect((await user.json()).error.code).toBe("admin_required");
  });
});

describe("GET /dashboard", () => {
  it("is open (it holds no data) and allows no script but its own file", async () => {
    const r = await start({ FANOUT_PUBLISH_KEYS: KEY });
    const res = await fetch(`${r.base}/dashboard`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    const html = await res.text();
    expect(html).toContain('src="/dashboard.js"');
    expect(html).not.toMatch(/<script>(?!<\/script>)/);
    for (const [path, type] of [["/dashboard.js", "text/javascript"], ["/dashboard.css", "text/css"]]) {
      const a = await fetch(`${r.base}${path}`);
      expect(a.status).toBe(200);
      expect(a.headers.get("content-type")).toContain(type);
      expect(a.headers.get("x-content-type-options")).toBe("nosniff");
    }
  });
});
