import { afterEach, describe, expect, it } from "vitest";
import { SseClient, publish } from "../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";

const modes = brokerModes();

describe.each(modes)("a stalled client on the $name", (mode) => {
  let r: RunningRelay;
  afterEach(async () => {
    await r?.stop();
  });

  it("is disconnected when its queue overflows, while a fast client gets everything in order", async () => {
    r = await startRelay({ ...mode.env(), FANOUT_QUEUE_MAX_BYTES: String(256 * 1024), FANOUT_QUEUE_MAX_MESSAGES: "100000" });
    const slow = await SseClient.open(`${r.base}/v1/events?channel=firehose`);
    const fast = await SseClient.open(`${r.base}/v1/events?channel=firehose`);
    await Promise.all([slow.waitReady(), fast.waitReady()]);
    slow.pause();
    const payload = "x".repeat(16_000);
    const total = 800; // ~13 MB: far past loopback socket buffers plus the 256 KiB queue
    const rssBefore = process.memoryUsage().rss;
    // Batches of 8 (128 KB) stay under the queue limit: a healthy client absorbs each burst.
    for (let i = 0; i < total; i += 8) {
      const res = await publish(r.base, { messages: Array.from({ length: 8 }, (_, k) => ({ channel: "firehose", data: { i: i + k, payload } })) });
      expect(res.status).toBe(200);
    }
    // A guard against a hang, not a speed check: alone this takes about 2 s, but under the
    // full suite's load on two cores it has taken over 15 s.
    await fast.waitMessages(total, 90_000);
    expect(fast.envelopes().map((e) => (e.data as { i: number }).i)).toEqual(Array.from({ length: total }, (_, i) => i));
    // The relay dropped the stalled one instead of buffering for it.
    await new Promise((x) => setTimeout(x, 200));
    expect(r.relay.context.connections.size).toBe(1);
    const metrics = await (await fetch(`${r.base}/metrics`)).text();
    expect(metrics).toMatch(/fanout_slow_consumer_disconnects_total\{relay="[^"]+"\} 1/);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
    slow.close();
    fast.close();
  }, 120_000);
});
