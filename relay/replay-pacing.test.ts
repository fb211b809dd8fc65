import { describe, expect, it } from "vitest";
import { publish, type SseClient } from "../test/support/sse-client.js";
import { relayFixture } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";

const modes = brokerModes();

/** Publishes messages `from`..`from+n-1` of `size` bytes to `channel`, 100 per request. */
async function flood(base: string, channel: string, n: number, size: number, from = 0): Promise<void> {
  const payload = "x".repeat(size);
  for (let i = 0; i < n; i += 100) {
    const res = await publish(base, { messages: Array.from({ length: Math.min(100, n - i) }, (_, k) => ({ channel, data: { i: from + i + k, payload } })) });
    expect(res.status).toBe(200);
  }
}

const order = (c: SseClient): number[] => c.envelopes().map((e) => (e.data as { i: number }).i);
const upTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe.each(modes)("a resume over a large backlog on the $name", (mode) => {
  const { start, open } = relayFixture();

  it("replays a multi-megabyte backlog to a reading client: everything, in order, once", async () => {
    const r = await start({ ...mode.env(), FANOUT_HISTORY_SIZE: "5000" });
    const first = await open("channel=log");
    await first.waitReady();
    const cursor = first.lastEventId!;
    first.close();
    // ~8 MB missed: 8 × the old queue limit, and past the loopback socket buffers.
    await flood(r.base, "log", 800, 10_000);
    const back = await open("channel=log", { "Last-Event-ID": cursor });
    await back.waitMessages(800, 60_000);
    await flood(r.base, "log", 1, 10, 800);
    await back.waitMessages(801, 10_000);
    expect(order(back)).toEqual(upTo(801));
    expect(back.events.filter((e) => e.event === "reset")).toEqual([]);
    expect(back.closed).toBe(false);
  }, 90_000);

  it("keeps live messages that arrive during a long replay, without holding them all", async () => {
    // Live frames past 64 KiB held are dropped and read again from the log before going live.
    const r = await start({ ...mode.env(), FANOUT_HISTORY_SIZE: "5000", FANOUT_QUEUE_SOFT_BYTES: String(64 * 1024), FANOUT_QUEUE_SOFT_SECONDS: "3600" });
    // "a" is in partition 0 and "log" in partition 1 (of 4): the replay is done with "a"
    // before it starts on the long backlog of "log".
    const first = await open("channel=a&channel=log");
    await first.waitReady();
    const cursor = first.lastEventId!;
    first.close();
    await flood(r.base, "log", 800, 10_000);
    // The client stops reading at once: the replay stalls on the socket's drain while 2 MB
    // of live messages arrive on "a", then it reads again.
    const back = await open("channel=a&channel=log", { "Last-Event-ID": cursor });
    back.pause();
    await flood(r.base, "a", 200, 10_000, 800);
    back.resume();
    await back.waitMessages(1000, 60_000);
    await flood(r.base, "log", 1, 10, 1000);
    await back.waitMessages(1001, 10_000);
    const on = (ch: string): number[] => back.envelopes().filter((e) => e.channel === ch).map((e) => (e.data as { i: number }).i);
    expect(on("log")).toEqual([...upTo(800), 1000]);
    expect(on("a")).toEqual(upTo(1000).slice(800));
    expect(back.events.filter((e) => e.event === "reset")).toEqual([]);
    expect(r.relay.context.connections.size).toBe(1);
  }, 90_000);
});
