import { describe, expect, it } from "vitest";
import { SseClient, publish } from "../test/support/sse-client.js";
import { relayFixture, type RunningRelay } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";

const modes = brokerModes();

describe.each(modes)("GET /v1/events on the $name", (mode) => {
  let r: RunningRelay;
  const { start, open } = relayFixture();

  it("starts with retry and ready, with anti-buffering headers", async () => {
    r = await start(mode.env());
    const c = await open("channel=a&channel=b&pattern=user:*:n");
    await c.waitReady();
    expect(c.status).toBe(200);
    expect(c.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(c.headers["cache-control"]).toMatch(/no-cache/);
    expect(c.headers["x-accel-buffering"]).toBe("no");
    expect(c.retry).toBeGreaterThan(0);
    const ready = JSON.parse(c.events[0].data);
    expect(c.events[0].event).toBe("ready");
    expect(ready.channels).toEqual(["a", "b"]);
    expect(ready.patterns).toEqual(["user:*:n"]);
    expect(typeof ready.connection).toBe("string");
  });

  it("refuses a query string that is not percent-encoded UTF-8 (400 invalid_encoding), instead of subscribing to its raw text", async () => {
    r = await start(mode.env());
    for (const q of ["channel=%ED%A0%80", "channel=a&pattern=%FF*", "channel=a&lastEventId=%E2%82"]) {
      const res = await fetch(`${r.base}/v1/events?${q}`);
      expect(res.status, q).toBe(400);
      expect((await res.json()).error.code).toBe("invalid_encoding");
    }
    const ok = await open(`channel=${encodeURIComponent("café:€")}`);
    await ok.waitReady();
    expect(JSON.parse(ok.events[0].data).channels).toEqual(["café:€"]);
  });

  it("delivers exact, pattern and multiplexed messages with envelope, type and id", async () => {
    r = await start(mode.env());
    const c = await open("channel=orders:events&channel=chat:general&pattern=user:*:notifications");
    await c.waitReady();
    const p1 = await publish(r.base, { channel: "orders:events", data: { n: 1 }, type: "order.created" });
    expect(p1.status).toBe(200);
    expect(p1.json).toMatchObject({ channel: "orders:events", duplicate: false });
    expect(p1.json.receivers).toBeGreaterThanOrEqual(1);
    await publish(r.base, { channel: "chat:general", data: "hi" });
    await publish(r.base, { channel: "user:42:notifications", data: [1, 2] });
    await publish(r.base, { channel: "user:42:other", data: "not mine" });
    await c.waitMessages(3);
    const msgs = c.messages();
    expect(msgs.map((m) => m.event)).toEqual(["order.created", "message", "message"]);
    const env = c.envelopes();
    expect(env[0]).toMatchObject({ id: p1.json.id, channel: "orders:events", type: "order.created", data: { n: 1 } });
    expect(env[0].pattern).toBeUndefined();
    expect(typeof env[0].ts).toBe("number");
    expect(env[1]).toMatchObject({ channel: "chat:general", data: "hi" });
    expect(env[2]).toMatchObject({ channel: "user:42:notifications", pattern: "user:*:notifications", data: [1, 2] });
    for (const m of msgs) expect(m.id).toBeTruthy();
    await new Promise((res) => setTimeout(res, 100));
    expect(c.messages()).toHaveLength(3);
  });

  it("delivers a message once to a client whose channel and pattern both match", async () => {
    r = await start(mode.env());
    const c = await open("channel=news&pattern=n*&pattern=*s");
    await c.waitReady();
    await publish(r.base, { channel: "news", data: 1 });
    await publish(r.base, { channel: "nope", data: 2 });
    await c.waitMessages(2);
    await new Promise((res) => setTimeout(res, 100));
    expect(c.envelopes().map((e) => [e.channel, e.pattern])).toEqual([
      ["news", undefined],
      ["nope", "n*"],
    ]);
  });

  it("fans one message out to many clients, in publish order", async () => {
    r = await start(mode.env());
    const cs = await Promise.all(Array.from({ length: 20 }, () => open("channel=room")));
    await Promise.all(cs.map((c) => c.waitReady()));
    await publish(r.base, { messages: Array.from({ length: 50 }, (_, i) => ({ channel: "room", data: i })) });
    for (const c of cs) {
      await c.waitMessages(50);
      expect(c.envelopes().map((e) => e.data)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    }
  });

  it("cannot be injected into: newlines in data stay inside one data field", async () => {
    r = await start(mode.env());
    const c = await open("channel=inj");
    await c.waitReady();
    await publish(r.base, { channel: "inj", data: "line1\n\nevent: evil\ndata: {\"x\":1}\r\nid: 666" });
    await publish(r.base, { channel: "inj", data: { "k\nk": "v\r\nv" } });
    const bad = await publish(r.base, { channel: "inj", data: 1, type: "ok\nevent: evil" });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe("invalid_type");
    await c.waitMessages(2);
    expect(c.messages().map((m) => m.event)).toEqual(["message", "message"]);
    expect(c.envelopes()[0].data).toBe("line1\n\nevent: evil\ndata: {\"x\":1}\r\nid: 666");
    expect(c.envelopes()[1].data).toEqual({ "k\nk": "v\r\nv" });
  });

  it("refuses bad subscriptions with 4xx and a code", async () => {
    r = await start({ ...mode.env(), FANOUT_MAX_SUBSCRIPTIONS: "3" });
    const cases: Array<[string, number, string]> = [
      ["", 400, "no_subscriptions"],
      ["channel=", 400, "invalid_channel"],
      ["channel=a%0Ab", 400, "invalid_channel"],
      ["pattern=a%0D", 400, "invalid_channel"],
      [`channel=${"x".repeat(1025)}`, 400, "invalid_channel"],
      ["channel=a&channel=b&channel=c&channel=d", 400, "too_many_subscriptions"],
      ["pattern=*a*b*c*d*e*f*g*h*i*j", 400, "pattern_too_complex"],
    ];
    for (const [qs, status, code] of cases) {
      const res = await fetch(`${r.base}/v1/events?${qs}`);
      expect(res.status, qs).toBe(status);
      expect((await res.json()).error.code, qs).toBe(code);
    }
    // Still serving.
    const c = await open("channel=ok");
    await c.waitReady();
  });

  it("sends comment heartbeats on idle streams", async () => {
    r = await start({ ...mode.env(), FANOUT_HEARTBEAT_MS: "100" });
    const c = await open("channel=idle");
    await c.waitReady();
    await c.waitFor((x) => x.comments >= 2, 3000, "heartbeats");
  });

  it("releases broker subscriptions when the last client leaves", async () => {
    r = await start(mode.env());
    const a = await open("channel=shared&pattern=p:*");
    const b = await open("channel=shared");
    await Promise.all([a.waitReady(), b.waitReady()]);
    expect(r.relay.context.hub.stats().channels).toEqual({ shared: 2 });
    a.close();
    b.close();
    await new Promise((res) => setTimeout(res, 300));
    expect(r.relay.context.hub.stats()).toEqual({ channels: {}, patterns: {} });
    const res = await publish(r.base, { channel: "shared", data: 1 });
    expect(res.json.receivers).toBe(0);
  });
});
