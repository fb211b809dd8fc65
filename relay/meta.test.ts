import { afterEach, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { SseClient, publish } from "../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";
import { partitionOf, streamKey } from "../protocol/partition.js";

const modes = brokerModes();
const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

describe.each(modes)("envelope meta on the $name", (mode) => {
  let r: RunningRelay;
  const clients: SseClient[] = [];
  const open = async (q: string, headers: Record<string, string> = {}) => {
    const c = await SseClient.open(`${r.base}/v1/events?${q}`, headers);
    clients.push(c);
    return c;
  };
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await r?.stop();
  });

  it("carries meta publisher → stream → replay untouched, adds the traceparent header, refuses bad meta with 400 invalid_meta", async () => {
    r = await startRelay(mode.env());
    const live = await open("channel=m:a&pattern=m:*");
    await live.waitReady();
    const meta = { source: "billing", correlation_id: "c-42", "x.tenant": "é🙂" };
    const a = await publish(r.base, { channel: "m:a", type: "order.created", data: { n: 1 }, meta });
    expect(a.status).toBe(200);
    const b = await publish(r.base, { channel: "m:b", data: 2 }, { traceparent: TP });
    const c = await publish(r.base, { messages: [{ channel: "m:a", data: 3, meta: { traceparent: "00-11111111111111111111111111111111-2222222222222222-00" } }, { channel: "m:a", data: 4 }] }, { traceparent: "junk" });
    expect([b.status, c.status]).toEqual([200, 200]);
    const bad = await publish(r.base, { messages: [{ channel: "m:a", data: 5 }, { channel: "m:a", data: 6, meta: { source: 7 } }] });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe("invalid_meta");
    const badTrace = await publish(r.base, { channel: "m:a", data: 7, meta: { traceparent: "00-abc" } });
    expect(badTrace.json.error.code).toBe("invalid_meta");

    await live.waitMessages(4);
    const expected = [
      { id: a.json.id, channel: "m:a", type: "order.created", meta, data: { n: 1 }, ts: expect.any(Number) },
      { id: b.json.id, channel: "m:b", pattern: "m:*", meta: { traceparent: TP }, data: 2, ts: expect.any(Number) },
      { id: c.json.results[0].id, channel: "m:a", meta: { traceparent: "00-11111111111111111111111111111111-2222222222222222-00" }, data: 3, ts: expect.any(Number) },
      { id: c.json.results[1].id, channel: "m:a", data: 4, ts: expect.any(Number) },
    ];
    expect(live.envelopes()).toEqual(expected);
    // The envelope's field order on the wire: meta sits between type and data.
    expect(live.messages()[0].data).toMatch(/^\{"id":"[^"]+","channel":"m:a","type":"order.created","meta":\{"source":"billing",.*\},"data":\{"n":1\},"ts":\d+\}$/);

    // Resume from the ready cursor: the replay carries the same meta (in per-channel order).
    const ready = live.events.find((e) => e.event === "ready")!;
    const replay = await open("channel=m:a&pattern=m:*", { "Last-Event-ID": ready.id! });
    await replay.waitMessages(4);
    expect(replay.envelopes()).toHaveLength(4);
    expect(replay.envelopes()).toEqual(expect.arrayContaining(expected));
  });
});

describe("envelope meta in the Redis log", () => {
  const redisMode = modes[1];
  let r: RunningRelay | undefined;
  afterEach(async () => {
    await r?.stop();
  });

  it("is the stream entry's `m` field, and plain Redis subscribers see it in the payload", async () => {
    r = await startRelay(redisMode.env());
    const cmd = new Redis(redisMode.redis()!.url);
    const sub = new Redis(redisMode.redis()!.url);
    try {
      const seen: string[] = [];
      sub.on("message", (_ch: string, m: string) => seen.push(m));
      await sub.subscribe("m:log");
      const meta = { source: "billing", traceparent: TP };
      const res = await publish(r.base, { channel: "m:log", data: 1, meta });
      expect(res.status).toBe(200);
      const { prefix, partitions } = r.relay.context.config.log;
      const rows = (await cmd.xrange(streamKey(prefix, partitionOf("m:log", partitions)), "-", "+")) as [string, string[]][];
      const fields = rows.map(([, f]) => f).find((f) => f[1] === "m:log")!;
      expect(fields[fields.indexOf("m") + 1]).toBe(JSON.stringify(meta));
      for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((x) => setTimeout(x, 10));
      expect(JSON.parse(seen[0])).toEqual({ id: res.json.id, channel: "m:log", meta, data: 1, ts: expect.any(Number), mac: expect.any(String) });
    } finally {
      cmd.disconnect();
      sub.disconnect();
    }
  });
});
