import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { publish } from "../test/support/sse-client.js";
import { brokerModes } from "../test/support/modes.js";
import { signFanoutToken } from "../protocol/auth/sign-token.js";
import { FanoutClient, type ConnectionStatus, type Envelope, type FanoutClientError, type FanoutClientOptions, type ReadyInfo, type SseEvent } from "./index.js";
import { recordingFetch } from "./test/recording-fetch.js";
import { sleep, waitFor } from "./test/wait.js";

const modes = brokerModes();

/** A client that records everything it reports. */
function recorded(opts: FanoutClientOptions) {
  const client = new FanoutClient({ backoff: { initialMs: 50, maxMs: 500 }, ...opts });
  const rec = {
    client,
    all: [] as Envelope[],
    raw: [] as SseEvent[],
    ready: [] as ReadyInfo[],
    resets: [] as string[],
    statuses: [] as ConnectionStatus[],
    errors: [] as FanoutClientError[],
  };
  client.on("*", (e, raw) => {
    rec.all.push(e);
    rec.raw.push(raw);
  });
  client.onReady((i) => rec.ready.push(i));
  client.onReset((r) => rec.resets.push(r));
  client.onStatus((s) => rec.statuses.push(s));
  client.onError((e) => rec.errors.push(e));
  return rec;
}

describe.each(modes)("FanoutClient against a relay on the $name", (mode) => {
  const relays: RunningRelay[] = [];
  const clients: FanoutClient[] = [];
  const start = async (env: Record<string, string> = {}) => {
    const r = await startRelay({ ...mode.env(), ...env });
    relays.push(r);
    return r;
  };
  const track = <T extends { client: FanoutClient }>(x: T) => (clients.push(x.client), x);
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    for (const r of relays.splice(0)) await r.stop();
  });

  it("delivers typed, untyped and pattern-matched messages to the right handlers", async () => {
    const r = await start();
    const rec = track(recorded({ url: r.base, channels: ["orders"], patterns: ["user:*:dm"] }));
    const created: Envelope<{ n: number }>[] = [];
    const untyped: Envelope[] = [];
    const readyTyped: Envelope[] = [];
    rec.client.on<{ n: number }>("order.created", (e) => created.push(e));
    rec.client.on("message", (e) => untyped.push(e));
    rec.client.on("ready", (e) => readyTyped.push(e));
    await waitFor(() => rec.ready.length === 1, "ready");
    expect(rec.ready[0]).toMatchObject({ channels: ["orders"], patterns: ["user:*:dm"] });
    expect(rec.client.connectionId).toBe(rec.ready[0].connection);
    expect(rec.client.status).toBe("live");

    await publish(r.base, { channel: "orders", type: "order.created", data: { n: 1 } });
    await publish(r.base, { channel: "user:7:dm", data: "hi" });
    await publish(r.base, { channel: "other", data: "not mine" });
    // A message may carry a type that names a control event; it is still a message.
    await publish(r.base, { channel: "orders", type: "ready", data: "typed ready" });
    await waitFor(() => rec.all.length === 3, "3 messages");
    await sleep(50);

    expect(created.map((e) => e.data)).toEqual([{ n: 1 }]);
    expect(created[0]).toMatchObject({ channel: "orders", type: "order.created" });
    expect(typeof created[0].ts).toBe("number");
    expect(untyped).toEqual([expect.objectContaining({ channel: "user:7:dm", pattern: "user:*:dm", data: "hi" })]);
    expect(readyTyped.map((e) => e.data)).toEqual(["typed ready"]);
    expect(rec.ready).toHaveLength(1);
    expect(rec.raw.map((e) => e.type)).toEqual(["order.created", "message", "ready"]);
    expect(rec.client.lastEventId).toBe(rec.raw[2].lastEventId);
    expect(rec.statuses).toEqual(["connecting", "live"]);
    expect(rec.errors).toEqual([]);
  });

  it("keeps streaming when a handler throws, and reports it", async () => {
    const r = await start();
    const rec = track(recorded({ url: r.base, channels: ["t"] }));
    rec.client.on("message", (e) => {
      if (e.data === "boom") throw new Error("handler bug");
    });
    await waitFor(() => rec.ready.length === 1, "ready");
    await publish(r.base, { channel: "t", data: "boom" });
    await publish(r.base, { channel: "t", data: "after" });
    await waitFor(() => rec.all.length === 2, "2 messages");
    expect(rec.errors.map((e) => e.code)).toEqual(["handler_error"]);
    expect(rec.client.status).toBe("live");
  });

  it("close() stops delivery and reconnection for good", async () => {
    const r = await start();
    const { fetch, calls } = recordingFetch();
    const rec = track(recorded({ url: r.base, channels: ["c"], fetch }));
    await waitFor(() => rec.ready.length === 1, "ready");
    rec.client.on("*", () => rec.client.close());
    await publish(r.base, { messages: [{ channel: "c", data: 1 }, { channel: "c", data: 2 }] });
    await waitFor(() => rec.client.status === "closed", "closed");
    await publish(r.base, { channel: "c", data: 3 });
    await sleep(300);
    // Closing inside a handler stops the rest of that very chunk, too.
    expect(rec.all.map((e) => e.data)).toEqual([1]);
    expect(calls).toHaveLength(1);
    expect(rec.statuses).toEqual(["connecting", "live", "closed"]);
  });

  it("reconnects after a 503 no sooner than its Retry-After, then goes live", async () => {
    const r = await start();
    const { fetch, calls } = recordingFetch();
    // A draining relay answers new streams with 503 and Retry-After: 1.
    r.relay.context.draining = true;
    const rec = track(recorded({ url: r.base, channels: ["c"], fetch }));
    await waitFor(() => calls.length === 1 && calls[0].status !== undefined, "first answer");
    expect(calls[0].status).toBe(503);
    r.relay.context.draining = false;
    await waitFor(() => rec.ready.length === 1, "ready after the 503", 5000);
    expect(calls).toHaveLength(2);
    // Backoff alone (initialMs 50) would have retried long before the second Retry-After asked.
    expect(calls[1].at - calls[0].answeredAt!).toBeGreaterThanOrEqual(1000);
    expect(rec.statuses).toEqual(["connecting", "reconnecting", "live"]);
    expect(rec.errors).toEqual([]);
    await publish(r.base, { channel: "c", data: "x" });
    await waitFor(() => rec.all.length === 1, "message");
  });

  it("stops on a 400 and reports the relay's error code, without retrying", async () => {
    const r = await start();
    const { fetch, calls } = recordingFetch();
    const rec = track(recorded({ url: r.base, channels: ["ok", "bad\u0001channel"], fetch }));
    await waitFor(() => rec.client.status === "closed", "closed");
    await sleep(300);
    expect(calls).toHaveLength(1);
    expect(rec.errors).toHaveLength(1);
    expect(rec.errors[0]).toMatchObject({ name: "FanoutClientError", code: "invalid_channel", status: 400 });
    expect(rec.errors[0].message).toMatch(/channel/);
    expect(rec.statuses).toEqual(["connecting", "closed"]);
  });
});

describe("FanoutClient credentials", () => {
  const SECRET = "client-test-secret-0123456789abcdef";
  const KEY = "pk-client-test";
  let r: RunningRelay | undefined;
  const clients: FanoutClient[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    await r?.stop();
  });

  it("sends the token as Authorization (never in the URL), fetched anew per attempt; 401 and 403 stop the client", async () => {
    r = await startRelay({ FANOUT_JWT_SECRET: SECRET, FANOUT_PUBLISH_KEYS: KEY });
    const base = r.base;
    const { fetch, calls } = recordingFetch();
    let minted = 0;
    const ok = recorded({ url: base, patterns: ["user:42:*"], fetch, token: () => (minted++, signFanoutToken(SECRET, { subscribe: ["user:42:*"] })) });
    clients.push(ok.client);
    await waitFor(() => ok.ready.length === 1, "ready");
    await publish(base, { channel: "user:42:dm", data: "for 42" }, { Authorization: `Bearer ${KEY}` });
    await waitFor(() => ok.all.length === 1, "message");
    expect(minted).toBe(1);
    expect(calls[0].headers.authorization).toMatch(/^Bearer ey/);
    expect(calls[0].url).not.toMatch(/token/);

    const forbidden = recorded({ url: base, patterns: ["user:*"], token: await signFanoutToken(SECRET, { subscribe: ["user:42:*"] }) });
    const anonymous = recorded({ url: base, channels: ["user:42:dm"] });
    clients.push(forbidden.client, anonymous.client);
    await waitFor(() => forbidden.client.status === "closed" && anonymous.client.status === "closed", "both refused");
    expect(forbidden.errors.map((e) => e.status)).toEqual([403]);
    expect(forbidden.errors[0].code).toMatch(/^forbidden/);
    expect(anonymous.errors.map((e) => e.status)).toEqual([401]);
    expect(forbidden.all).toEqual([]);
  });
});

describe("FanoutClient against a silent server", () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? (server.closeAllConnections(), server.close(() => r())) : r())));

  it("reconnects when nothing arrives within idleTimeoutMs, resuming with Last-Event-ID", async () => {
    const seen: Array<string | undefined> = [];
    server = createServer((req, res) => {
      seen.push(req.headers["last-event-id"] as string | undefined);
      res.writeHead(200, { "Content-Type": "text/event-stream" });
      res.write(`retry: 10\n\nid: cursor-${seen.length}\nevent: ready\ndata: {"connection":"c${seen.length}","channels":["x"],"patterns":[]}\n\n`);
      // …and then silence: no heartbeat, no end. A half-open connection looks like this.
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const rec = recorded({ url, channels: ["x"], idleTimeoutMs: 200, lastEventId: "start" });
    try {
      await waitFor(() => rec.ready.length >= 3, "three connections", 5000);
      expect(seen.slice(0, 3)).toEqual(["start", "cursor-1", "cursor-2"]);
      expect(rec.statuses.slice(0, 4)).toEqual(["connecting", "live", "reconnecting", "live"]);
    } finally {
      rec.client.close();
    }
  });
});
