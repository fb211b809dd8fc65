import { describe, expect, inject, it } from "vitest";
import { call, openSse, testEnv, uniq, type SseEvent } from "./test-helpers.js";

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
});
