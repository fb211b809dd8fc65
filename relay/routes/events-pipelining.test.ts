import { afterEach, describe, expect, it } from "vitest";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { signFanoutToken } from "../../protocol/auth/sign-token.js";
import { relayFixture } from "../../test/support/relay-harness.js";
import { brokerModes } from "../../test/support/modes.js";
import { RawConnection, openFrom, rawConnections } from "../../test/support/raw-http.js";

const modes = brokerModes();
const KEY = "pk-pipeline";
const JWT_SECRET = "pipeline-test-secret-0123456789abcdef";

const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

describe.each(modes)("pipelined requests on the $name", (mode) => {
  const { start } = relayFixture();
  const connect = rawConnections();
  const held: Array<{ close(): void }> = [];
  afterEach(() => held.splice(0).forEach((c) => c.close()));

  it("serves a stream pipelined behind another request once that response has ended", async () => {
    const r = await start({ ...mode.env(), FANOUT_PUBLISH_KEYS: KEY, FANOUT_PUBLIC_CHANNELS: "public:*" });
    const raw = await connect(r.port);
    await raw.write(get("/v1/stats") + get("/v1/events?channel=public:b"));
    await raw.waitFor((t) => t.includes("event: ready"), "the pipelined stream's ready event");
    expect(raw.statuses()).toEqual([200, 200]);
    expect((await publish(r.base, { channel: "public:b", data: "after pipelining" }, { Authorization: `Bearer ${KEY}` })).status).toBe(200);
    await raw.waitFor((t) => t.includes("after pipelining"), "the published message on the pipelined stream");
    expect((await fetch(`${r.base}/healthz`)).status).toBe(200);
  });

  it("holds a connection slot for a stream waiting behind another stream, and frees it when the connection closes", async () => {
    const r = await start({ ...mode.env(), FANOUT_MAX_CONNECTIONS_PER_IP: "2" });
    const raw = await connect(r.port, "127.0.0.3");
    // The second stream can never be served (the first never ends): it waits for the connection.
    await raw.write(get("/v1/events?channel=a") + get("/v1/events?channel=b"));
    await raw.waitFor((t) => t.includes("event: ready"), "the first stream's ready event");
    let third = await openFrom(r.base, "channel=c", "127.0.0.3");
    for (let i = 0; i < 50 && third.status === 200; i++) {
      // The waiting stream takes its slot once its handler has run; until then a third may fit.
      third.close();
      await new Promise((res) => setTimeout(res, 20));
      third = await openFrom(r.base, "channel=c", "127.0.0.3");
    }
    held.push(third);
    expect(third.status).toBe(429);
    raw.close();
    let after = { status: 0, close() {} };
    for (let i = 0; i < 100 && after.status !== 200; i++) {
      after.close();
      await new Promise((res) => setTimeout(res, 20));
      after = await openFrom(r.base, "channel=c", "127.0.0.3");
    }
    held.push(after);
    expect(after.status).toBe(200);
    expect(r.relay.context.connections.size).toBe(1);
  });

  it("answers pipelined requests of every kind in order on one connection", async () => {
    const r = await start({ ...mode.env(), FANOUT_PUBLISH_KEYS: KEY });
    const raw = await connect(r.port);
    const body = JSON.stringify({ channel: "p", data: 1 });
    await raw.write(
      get("/healthz") +
        `POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        `POST /v1/publish HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        get("/v1/events?channel=") +
        get("/v1/events?channel=p"),
    );
    await raw.waitFor((t) => t.includes("event: ready"), "the last pipelined request, a stream");
    expect(raw.statuses()).toEqual([200, 200, 401, 400, 200]);
  });

  it("applies many pipelined publishes in the order sent and answers each, holding the sender back meanwhile", async () => {
    const r = await start({ ...mode.env(), FANOUT_PUBLISH_KEYS: KEY, FANOUT_JWT_SECRET: JWT_SECRET, FANOUT_PUBLIC_CHANNELS: "flood" });
    const sub = await SseClient.open(`${r.base}/v1/events?channel=flood`);
    held.push(sub);
    await sub.waitReady();
    // Every tenth authorized by a JWT (verified asynchronously), so requests queue behind it:
    // past 32 waiting, the relay stops reading the connection until they drain.
    const token = await signFanoutToken(JWT_SECRET, { publish: ["flood"] });
    const n = 300;
    let wire = "";
    for (let i = 0; i < n; i++) {
      const body = JSON.stringify({ channel: "flood", data: i });
      wire += `POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${i % 10 === 0 ? token : KEY}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    }
    const raw = await connect(r.port);
    await raw.write(wire);
    await raw.waitFor((t) => t.split('"receivers"').length === n + 1, `${n} publish results`);
    expect(raw.statuses()).toEqual(Array.from({ length: n }, () => 200));
    await sub.waitMessages(n);
    expect(sub.envelopes().map((e) => e.data)).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it("frees the slot of a stream whose connection closed while it was being authorized", async () => {
    const r = await start({ ...mode.env(), FANOUT_PUBLISH_KEYS: KEY, FANOUT_MAX_CONNECTIONS_PER_IP: "1" });
    for (let i = 0; i < 5; i++) {
      const issued = await fetch(`${r.base}/v1/tickets`, { method: "POST", headers: { Authorization: `Bearer ${KEY}` }, body: JSON.stringify({ channels: ["a"] }) });
      const { ticket } = (await issued.json()) as { ticket: string };
      const raw = await RawConnection.open(r.port, "127.0.0.4");
      // Gone before the ticket is redeemed (a store round trip in Redis mode).
      await raw.write(get(`/v1/events?channel=a&ticket=${ticket}`));
      raw.close();
    }
    let after = { status: 0, close() {} };
    for (let i = 0; i < 100 && after.status !== 200; i++) {
      after.close();
      await new Promise((res) => setTimeout(res, 20));
      after = await openFrom(r.base, "channel=a", "127.0.0.4");
    }
    held.push(after);
    expect(after.status).toBe(200);
  });

  it("reads nothing more from a stream's connection once its head is sent: what the client sends is ignored and delivery goes on", async () => {
    const r = await start({ ...mode.env(), FANOUT_PUBLISH_KEYS: KEY });
    const raw = await connect(r.port);
    await raw.write(get("/v1/events?channel=ignored"));
    await raw.waitFor((t) => t.includes("event: ready"), "the stream's ready event");
    // Neither a request (its response could never come: the stream does not end) nor garbage.
    await raw.write(get("/v1/stats") + "\x00\x01 not http at all\r\n\r\n");
    expect((await publish(r.base, { channel: "ignored", data: "still here" }, { Authorization: `Bearer ${KEY}` })).status).toBe(200);
    await raw.waitFor((t) => t.includes("still here"), "the message after the client's bytes");
    expect(raw.statuses()).toEqual([200]);
    expect(r.relay.context.connections.size).toBe(1);
  });

  it("ends a stream whose client half-closes its connection, and frees its slot", async () => {
    const r = await start({ ...mode.env(), FANOUT_MAX_CONNECTIONS_PER_IP: "1" });
    const raw = await RawConnection.open(r.port, "127.0.0.5");
    await raw.write(get("/v1/events?channel=half"));
    await raw.waitFor((t) => t.includes("event: ready"), "the stream's ready event");
    raw.end();
    await raw.waitClosed();
    let after = { status: 0, close() {} };
    for (let i = 0; i < 100 && after.status !== 200; i++) {
      after.close();
      await new Promise((res) => setTimeout(res, 20));
      after = await openFrom(r.base, "channel=half", "127.0.0.5");
    }
    held.push(after);
    expect(after.status).toBe(200);
    expect(r.relay.context.connections.size).toBe(1);
  });
});
