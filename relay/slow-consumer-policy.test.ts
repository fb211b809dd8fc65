import { describe, expect, it } from "vitest";
import { publish, type SseClient } from "../test/support/sse-client.js";
import { relayFixture } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";

const modes = brokerModes();
const KiB = 1024;
const MiB = 1024 * KiB;

async function metric(base: string, line: RegExp): Promise<number> {
  const m = (await (await fetch(`${base}/metrics`)).text()).match(line);
  return m ? Number(m[1]) : 0;
}

const cuts = (reason: string): RegExp => new RegExp(`fanout_slow_consumer_disconnects_by_reason_total\\{reason="${reason}",relay="[^"]+"\\} (\\d+)`);

/** Publishes `n` messages of `size` bytes to `channel`, 100 per request, and checks each answer. */
async function flood(base: string, channel: string, n: number, size: number, from = 0): Promise<void> {
  const payload = "x".repeat(size);
  for (let i = 0; i < n; i += 100) {
    const res = await publish(base, { messages: Array.from({ length: Math.min(100, n - i) }, (_, k) => ({ channel, data: { i: from + i + k, payload } })) });
    expect(res.status).toBe(200);
  }
}

/** Polls until `pred` holds (a paused client does not see its connection end: ask the relay). */
async function until(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((x) => setTimeout(x, 50));
  }
}

const order = (c: SseClient): number[] => c.envelopes().map((e) => (e.data as { i: number }).i);

describe.each(modes)("the slow-consumer policy on the $name", (mode) => {
  const { start, open } = relayFixture();

  it("lets a reading client through bursts of several times the soft limit, and a 1 MiB message through to every subscriber", async () => {
    const r = await start({ ...mode.env(), FANOUT_QUEUE_SOFT_BYTES: String(256 * KiB) });
    const readers = await Promise.all([open("channel=burst"), open("channel=burst"), open("channel=burst")]);
    await Promise.all(readers.map((c) => c.waitReady()));
    // Ten batches of 100 × 10.4 KB (each ~4× the soft limit, in one event-loop turn), then
    // one publish of a body at the 1 MiB body limit.
    await flood(r.base, "burst", 1000, 10_400);
    const big = "y".repeat(1024 * 1024 - JSON.stringify({ channel: "burst", data: "" }).length);
    expect((await publish(r.base, { channel: "burst", data: big })).status).toBe(200);
    for (const c of readers) {
      await c.waitMessages(1001, 30_000);
      expect(order(c).slice(0, 1000)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
      expect(c.envelopes()[1000].data).toBe(big);
      expect(c.closed).toBe(false);
    }
    expect(await metric(r.base, /fanout_slow_consumer_disconnects_total\{relay="[^"]+"\} (\d+)/)).toBe(0);
    // Once everything is read, nothing stays counted against the relay-wide budget.
    await until(() => r.relay.context.queues.bytes === 0, "the queued bytes to return to 0");
  }, 60_000);

  it("cuts a stalled client once it has held more than the soft limit for the soft period", async () => {
    const r = await start({ ...mode.env(), FANOUT_QUEUE_SOFT_BYTES: String(64 * KiB), FANOUT_QUEUE_SOFT_SECONDS: "1" });
    const stalled = await open("channel=s");
    const reader = await open("channel=s");
    await Promise.all([stalled.waitReady(), reader.waitReady()]);
    stalled.pause();
    // ~6 MB: past the loopback socket buffers (~4 MB), far below the 32 MiB hard limit.
    await flood(r.base, "s", 600, 10_000);
    await until(async () => (await metric(r.base, cuts("soft"))) === 1, "the soft cut");
    await reader.waitMessages(600, 30_000);
    expect(order(reader)).toEqual(Array.from({ length: 600 }, (_, i) => i));
    expect(await metric(r.base, cuts("soft"))).toBe(1);
    expect(await metric(r.base, cuts("hard"))).toBe(0);
    expect(r.relay.context.connections.size).toBe(1);
  }, 60_000);

  it("cuts the clients holding the most first when the relay-wide budget is exceeded", async () => {
    const r = await start({ ...mode.env(), FANOUT_QUEUE_BUDGET_BYTES: String(10 * MiB), FANOUT_QUEUE_SOFT_SECONDS: "3600" });
    // `small` backs up first, so a budget that cut in arrival order would pick it.
    const small = await open("channel=both");
    const large = await open("channel=both&channel=big");
    const reader = await open("channel=both&channel=big");
    await Promise.all([small, large, reader].map((c) => c.waitReady()));
    small.pause();
    large.pause();
    // Each stalled client holds ~3 MB beyond its socket buffers: ~6 MB in all, under the budget.
    await flood(r.base, "both", 700, 10_000);
    await new Promise((x) => setTimeout(x, 300));
    expect(r.relay.context.connections.size).toBe(3);
    // `large` alone goes to ~11 MB held: over the budget; cutting it is enough.
    await flood(r.base, "big", 800, 10_000, 700);
    await until(async () => (await metric(r.base, cuts("budget"))) === 1, "the budget cut");
    await reader.waitMessages(1500, 30_000);
    expect(order(reader)).toEqual(Array.from({ length: 1500 }, (_, i) => i));
    await new Promise((x) => setTimeout(x, 300));
    expect(r.relay.context.connections.size).toBe(2);
    // The survivor is `small`: it still gets new messages once it reads again.
    small.resume();
    await flood(r.base, "both", 1, 10, 1500);
    await small.waitFor((c) => order(c).includes(1500), 30_000, "the survivor's next message");
    expect(await metric(r.base, cuts("budget"))).toBe(1);
    expect(await metric(r.base, /fanout_queued_bytes\{relay="[^"]+"\} (\d+)/)).toBeLessThanOrEqual(10 * MiB);
  }, 60_000);
});
