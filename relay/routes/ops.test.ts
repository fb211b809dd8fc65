import { afterEach, describe, expect, it } from "vitest";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../../test/support/relay-harness.js";

describe("operations endpoints", () => {
  let r: RunningRelay;
  afterEach(async () => {
    await r?.stop();
  });

  it("serve health, readiness, Prometheus metrics and stats", async () => {
    r = await startRelay();
    expect(await (await fetch(`${r.base}/healthz`)).json()).toEqual({ status: "ok" });
    expect((await fetch(`${r.base}/readyz`)).status).toBe(200);
    const c = await SseClient.open(`${r.base}/v1/events?channel=s1&channel=s2&pattern=p:*`);
    const c2 = await SseClient.open(`${r.base}/v1/events?channel=s1`);
    await Promise.all([c.waitReady(), c2.waitReady()]);
    await publish(r.base, { channel: "s1", data: 1 });
    await publish(r.base, { channel: "p:1", data: 2 });
    await c.waitMessages(2);
    await c2.waitMessages(1);

    const stats = await (await fetch(`${r.base}/v1/stats`)).json();
    expect(stats).toMatchObject({ broker: "memory", ready: true, connections: 2, channels: { s1: 2, s2: 1 }, patterns: { "p:*": 1 } });
    expect(stats.messages.published).toBe(2);
    expect(stats.rates.outPerSecond).toBeGreaterThan(0);

    const res = await fetch(`${r.base}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^fanout_connections 2$/m);
    expect(text).toMatch(/^fanout_broker_subscriptions\{kind="channel"\} 2$/m);
    expect(text).toMatch(/^fanout_messages_out_total 3$/m);
    expect(text).toMatch(/^fanout_publish_to_write_seconds_count 2$/m);
    expect(text).toMatch(/^fanout_process_resident_memory_bytes /m);
    c.close();
    c2.close();
  });

  it("answers unknown routes with a JSON 404", async () => {
    r = await startRelay();
    const res = await fetch(`${r.base}/nope`);
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe("not_found");
  });
});
