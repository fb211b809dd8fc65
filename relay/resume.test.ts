import { afterEach, describe, expect, it } from "vitest";
import { SseClient, publish } from "../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";

const modes = brokerModes();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(modes)("Last-Event-ID resume on the $name", (mode) => {
  const relays: RunningRelay[] = [];
  const clients: SseClient[] = [];
  const start = async (env: Record<string, string> = {}) => {
    const r = await startRelay({ ...mode.env(), ...env });
    relays.push(r);
    return r;
  };
  const open = async (r: RunningRelay, qs: string, lastEventId?: string) => {
    const c = await SseClient.open(`${r.base}/v1/events?${qs}`, lastEventId ? { "Last-Event-ID": lastEventId } : {});
    clients.push(c);
    await c.waitReady();
    return c;
  };
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    for (const r of relays.splice(0)) await r.stop();
  });

  it("replays exactly what was missed on channels and patterns, then goes live", async () => {
    const r = await start();
    const qs = "channel=a&channel=b&pattern=user:*";
    const c1 = await open(r, qs);
    for (let i = 0; i < 3; i++) await publish(r.base, { channel: "a", data: `a${i}` });
    await c1.waitMessages(3);
    const last = c1.lastEventId!;
    c1.close();
    await publish(r.base, { messages: [{ channel: "a", data: "a3" }, { channel: "b", data: "b0" }, { channel: "user:7", data: "u0" }, { channel: "zzz", data: "no" }, { channel: "a", data: "a4" }] });
    const c2 = await open(r, qs, last);
    await c2.waitMessages(4);
    await publish(r.base, { channel: "user:8", data: "u1-live" });
    await c2.waitMessages(5);
    await sleep(100);
    const env = c2.envelopes();
    expect(env.map((e) => e.data).filter((d) => String(d).startsWith("a"))).toEqual(["a3", "a4"]);
    expect(env.map((e) => e.data).sort()).toEqual(["a3", "a4", "b0", "u0", "u1-live"]);
    expect(env.find((e) => e.data === "u0")!.pattern).toBe("user:*");
    expect(c2.events.some((e) => e.event === "reset")).toBe(false);
  });

  it("accepts the cursor as ?lastEventId= and from a ready event with no message yet", async () => {
    const r = await start();
    const c1 = await open(r, "channel=q");
    const readyId = c1.lastEventId!;
    expect(readyId).toBeTruthy();
    c1.close();
    await publish(r.base, { channel: "q", data: 1 });
    const c2 = await open(r, `channel=q&lastEventId=${encodeURIComponent(readyId)}`);
    await c2.waitMessages(1);
    expect(c2.envelopes()[0].data).toBe(1);
  });

  it("delivers messages published during a reconnect exactly once, in order", async () => {
    const r = await start();
    const c1 = await open(r, "channel=race");
    await publish(r.base, { channel: "race", data: 0 });
    await c1.waitMessages(1);
    const last = c1.lastEventId!;
    c1.close();
    let n = 1;
    let stop = false;
    const pub = (async () => {
      while (!stop && n < 400) await publish(r.base, { channel: "race", data: n++ });
    })();
    await sleep(20);
    const c2 = await open(r, "channel=race", last);
    await sleep(50);
    stop = true;
    await pub;
    await c2.waitMessages(n - 1);
    await sleep(100);
    expect(c2.envelopes().map((e) => e.data)).toEqual(Array.from({ length: n - 1 }, (_, i) => i + 1));
  });

  it("says reset for malformed and unknown cursors and continues live without replaying everything", async () => {
    const r = await start();
    await publish(r.base, { channel: "m", data: "old" });
    for (const bad of ["garbage!!", "0_0", "zzzzzzzzzzzzzzzzzzzz_0_0_0", "\u00e9", "a".repeat(5000)]) {
      const c = await open(r, "channel=m", bad);
      await c.waitFor((x) => x.events.some((e) => e.event === "reset"), 3000, "reset");
      const reset = JSON.parse(c.events.find((e) => e.event === "reset")!.data);
      expect(["malformed", "unknown"]).toContain(reset.reason);
      await publish(r.base, { channel: "m", data: `live-${bad.length}` });
      await c.waitMessages(1);
      expect(c.envelopes().map((e) => e.data)).toEqual([`live-${bad.length}`]);
      c.close();
    }
    // A cursor from the future (e.g. Redis lost its data) is unknown, and does not swallow new messages.
    const future = ["zzzzzzzzz", "zzzzzzzzz", "zzzzzzzzz", "zzzzzzzzz"].join("_");
    const c = await open(r, "channel=m", future);
    await c.waitFor((x) => x.events.some((e) => e.event === "reset"), 3000, "reset");
    expect(JSON.parse(c.events.find((e) => e.event === "reset")!.data).reason).toBe("unknown");
    await publish(r.base, { channel: "m", data: "after-future" });
    await c.waitMessages(1);
  });

  it("says reset with reason retention when the missed range was trimmed", async () => {
    const r = await start({ FANOUT_HISTORY_SIZE: "5", FANOUT_LOG_PARTITIONS: "1" });
    const c1 = await open(r, "channel=t");
    await publish(r.base, { channel: "t", data: -1 });
    await c1.waitMessages(1);
    const last = c1.lastEventId!;
    c1.close();
    // Redis trims approximately (whole stream nodes of 100 entries), so publish well past that.
    for (let i = 0; i < 260; i += 20) await publish(r.base, { messages: Array.from({ length: 20 }, (_, k) => ({ channel: "t", data: i + k })) });
    const c2 = await open(r, "channel=t", last);
    await c2.waitFor((x) => x.events.some((e) => e.event === "reset"), 3000, "reset");
    expect(JSON.parse(c2.events.find((e) => e.event === "reset")!.data).reason).toBe("retention");
    // What is still retained follows, in order, ending with the newest.
    await c2.waitFor((x) => x.envelopes().some((e) => e.data === 259), 3000, "retained tail");
    const got = c2.envelopes().map((e) => e.data as number);
    expect(got).toEqual([...got].sort((a, b) => a - b));
    expect(got.length).toBeLessThan(261);
  });

  it("randomized: clients dropping and resuming at random see every channel's sequence exactly", async () => {
    const r = await start();
    const channels = ["r:a", "r:b", "r:c", "s:d"];
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const published: Record<string, number[]> = Object.fromEntries(channels.map((c) => [c, []]));
    const clientSpecs = ["channel=r:a&channel=r:b", "pattern=r:*", "channel=s:d&pattern=r:[ab]", "pattern=*"];
    const received: Array<Record<string, number[]>> = clientSpecs.map(() => ({}));
    const conns: Array<SseClient | undefined> = [];
    const lastIds: Array<string | undefined> = [];
    const absorb = (i: number) => {
      const c = conns[i];
      if (!c) return;
      for (const e of c.envelopes()) (received[i][e.channel] ??= []).push(e.data as number);
      lastIds[i] = c.lastEventId;
      c.close();
      conns[i] = undefined;
    };
    for (let i = 0; i < clientSpecs.length; i++) conns[i] = await open(r, clientSpecs[i]);
    let seq = 0;
    for (let step = 0; step < 60; step++) {
      const batch = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => {
        const ch = channels[Math.floor(rand() * channels.length)];
        published[ch].push(seq);
        return { channel: ch, data: seq++ };
      });
      await publish(r.base, { messages: batch });
      const i = Math.floor(rand() * clientSpecs.length);
      if (rand() < 0.3) {
        // Wait a random moment so the drop lands anywhere relative to delivery.
        await sleep(Math.floor(rand() * 5));
        absorb(i);
        conns[i] = await open(r, clientSpecs[i], lastIds[i]);
      }
    }
    const expectFor = (spec: string) =>
      channels.filter((ch) => (spec.includes("pattern=*") ? true : spec.includes(`channel=${ch}`) || (spec.includes("pattern=r:*") && ch.startsWith("r:")) || (spec.includes("pattern=r:[ab]") && (ch === "r:a" || ch === "r:b"))));
    for (let i = 0; i < clientSpecs.length; i++) {
      const want = expectFor(clientSpecs[i]);
      const total = want.reduce((a, ch) => a + published[ch].length, 0);
      const already = () => Object.values(received[i]).reduce((a, v) => a + v.length, 0) + (conns[i]?.messages().length ?? 0);
      await conns[i]!.waitFor(() => already() >= total, 5000, `client ${i} total ${total}`);
      await sleep(50);
      absorb(i);
      for (const ch of channels) expect(received[i][ch] ?? [], `client ${i} ${ch}`).toEqual(want.includes(ch) ? published[ch] : []);
    }
  });
});

describe.each(brokerModes())("the first id of a stream on the $name", (mode) => {
  it("does not make a resume replay what was published before the client subscribed", async () => {
    const r = await startRelay(mode.env());
    try {
      // Traffic the relay never subscribed to, in every partition.
      await publish(r.base, { messages: Array.from({ length: 16 }, (_, i) => ({ channel: `before:${i}`, data: "old" })) });
      const c = await SseClient.open(`${r.base}/v1/events?channel=before:3&pattern=before:1*`);
      await c.waitReady();
      const readyId = c.lastEventId!;
      c.close();
      await publish(r.base, { channel: "before:3", data: "new" });
      const c2 = await SseClient.open(`${r.base}/v1/events?channel=before:3&pattern=before:1*`, { "Last-Event-ID": readyId });
      await c2.waitMessages(1);
      await sleep(150);
      expect(c2.envelopes().map((e) => e.data)).toEqual(["new"]);
      c2.close();
    } finally {
      await r.stop();
    }
  });

  it("does not either for a stream that joins subscriptions already open (publishes acknowledged just before it connects)", async () => {
    const r = await startRelay(mode.env());
    try {
      // The first stream opens (and settles) the subscriptions; the next ones join them.
      const first = await SseClient.open(`${r.base}/v1/events?channel=join:3&pattern=join:1*`);
      await first.waitReady();
      for (let round = 0; round < 3; round++) {
        await publish(r.base, { messages: [{ channel: "join:3", data: `old${round}` }, { channel: "join:12", data: `old${round}` }] });
        const c = await SseClient.open(`${r.base}/v1/events?channel=join:3&pattern=join:1*`);
        await c.waitReady();
        const readyId = c.lastEventId!;
        c.close();
        await publish(r.base, { channel: "join:3", data: `new${round}` });
        const c2 = await SseClient.open(`${r.base}/v1/events?channel=join:3&pattern=join:1*`, { "Last-Event-ID": readyId });
        await c2.waitMessages(1);
        await sleep(100);
        expect(c2.envelopes().map((e) => e.data)).toEqual([`new${round}`]);
        c2.close();
      }
      first.close();
    } finally {
      await r.stop();
    }
  });
});
