import { describe, expect, inject, it } from "vitest";
import { call, openSse, testEnv, uniq, type SseEvent } from "./test/helpers.js";

// The same log prefix (and default partitions) as the relay process: one durable log.
const env = testEnv({ FANOUT_LOG_PREFIX: inject("relayLogPrefix"), FANOUT_PUBLISH_KEYS: "edge-key" });
const publish = (channel: string, data: unknown) => call(env, "/v1/publish", { body: { channel, data, type: "edge" }, key: "edge-key" });

async function nextMessage(sse: { next(t?: number): Promise<SseEvent> }): Promise<SseEvent> {
  for (;;) {
    const ev = await sse.next();
    if (ev.event !== "ready" && ev.event !== "reset" && ev.id !== undefined) return ev;
  }
}

describe("edge functions (workerd) → relay (Node) on one Redis", () => {
  it("delivers an edge publish to an SSE client and replays edge publishes after a disconnect", async () => {
    const relay = inject("relayUrl");
    expect(relay, `the relay did not start: ${inject("relayError")}`).not.toBe("");
    const channel = uniq("edge:orders");
    const url = `${relay}/v1/events?channel=${encodeURIComponent(channel)}`;

    const first = await openSse(url);
    let ready: SseEvent;
    do ready = await first.next();
    while (ready.event !== "ready");
    const p1 = await publish(channel, { n: 1 });
    expect(p1.status).toBe(200);
    expect(p1.json.receivers).toBeGreaterThanOrEqual(1);
    const m1 = await nextMessage(first);
    expect(m1.event).toBe("edge");
    expect(JSON.parse(m1.data)).toMatchObject({ id: p1.json.id, channel, type: "edge", data: { n: 1 } });
    first.close();

    const p2 = await publish(channel, { n: 2 });
    const p3 = await publish(channel, { n: 3 });
    const again = await openSse(url, { "last-event-id": m1.id! });
    try {
      const replayed = [await nextMessage(again), await nextMessage(again)].map((e) => JSON.parse(e.data));
      expect(replayed.map((e) => [e.id, e.data.n])).toEqual([
        [p2.json.id, 2],
        [p3.json.id, 3],
      ]);
      const p4 = await publish(channel, { n: 4 });
      expect(JSON.parse((await nextMessage(again)).data)).toMatchObject({ id: p4.json.id, data: { n: 4 } });
    } finally {
      again.close();
    }
  });

  it("carries an edge publish's meta to the relay's live stream and its replay", async () => {
    const relay = inject("relayUrl");
    expect(relay, `the relay did not start: ${inject("relayError")}`).not.toBe("");
    const channel = uniq("edge:meta");
    const url = `${relay}/v1/events?channel=${encodeURIComponent(channel)}`;
    const sse = await openSse(url);
    let ready: SseEvent;
    do ready = await sse.next();
    while (ready.event !== "ready");
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const p = await call(env, "/v1/publish", { body: { channel, data: 1, meta: { source: "edge" } }, headers: { traceparent }, key: "edge-key" });
    expect(p.status).toBe(200);
    const meta = { source: "edge", traceparent };
    expect(JSON.parse((await nextMessage(sse)).data)).toEqual({ id: p.json.id, channel, meta, data: 1, ts: expect.any(Number) });
    sse.close();
    const again = await openSse(url, { "last-event-id": ready.id! });
    try {
      expect(JSON.parse((await nextMessage(again)).data)).toEqual({ id: p.json.id, channel, meta, data: 1, ts: expect.any(Number) });
    } finally {
      again.close();
    }
  });

  it("mints a subscribe ticket at the edge that the relay honours once, for its scope only", async () => {
    const relay = inject("relayUrl");
    expect(relay, `the relay did not start: ${inject("relayError")}`).not.toBe("");
    const channel = uniq("edge:ticket");
    const minted = await call(env, "/v1/tickets", { body: { channels: [channel] }, key: "edge-key" });
    expect(minted.status).toBe(200);
    expect(minted.headers.get("cache-control")).toBe("no-store");
    const { ticket } = minted.json as { ticket: string };
    expect((await call(env, "/v1/tickets", { body: { channels: [channel] }, key: null })).status).toBe(401);

    const outside = await fetch(`${relay}/v1/events?channel=other&ticket=${encodeURIComponent(ticket)}`);
    expect(outside.status).toBe(403);
    await outside.body?.cancel();
    // A refused attempt used the ticket up: tickets are single use, whatever the outcome.
    const reused = await fetch(`${relay}/v1/events?channel=${encodeURIComponent(channel)}&ticket=${encodeURIComponent(ticket)}`);
    expect(reused.status).toBe(401);
    await reused.body?.cancel();

    const second = (await call(env, "/v1/tickets", { body: { channels: [channel] }, key: "edge-key" })).json as { ticket: string };
    const sse = await openSse(`${relay}/v1/events?channel=${encodeURIComponent(channel)}&ticket=${encodeURIComponent(second.ticket)}`);
    try {
      let ev: SseEvent;
      do ev = await sse.next();
      while (ev.event !== "ready");
      const p = await publish(channel, { n: 1 });
      expect(JSON.parse((await nextMessage(sse)).data)).toMatchObject({ id: p.json.id, channel });
    } finally {
      sse.close();
    }
  });
});
