import { afterEach, describe, expect, it } from "vitest";
import { SseClient, publish } from "../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";

const modes = brokerModes();

describe.each(modes)("POST /v1/publish on the $name", (mode) => {
  let r: RunningRelay;
  afterEach(async () => {
    await r?.stop();
  });

  it("refuses every kind of bad input with a 4xx and a code, publishing nothing", async () => {
    r = await startRelay({ ...mode.env(), FANOUT_MAX_BODY_BYTES: "2048", FANOUT_MAX_BATCH: "3" });
    const watcher = await SseClient.open(`${r.base}/v1/events?pattern=*`);
    await watcher.waitReady();
    const cases: Array<[unknown, number, string]> = [
      ["{not json", 400, "invalid_json"],
      ["", 400, "invalid_json"],
      ["[1,2]", 400, "invalid_body"],
      ["null", 400, "invalid_body"],
      [{ data: 1 }, 400, "invalid_channel"],
      [{ channel: "", data: 1 }, 400, "invalid_channel"],
      [{ channel: 42, data: 1 }, 400, "invalid_channel"],
      [{ channel: "a\nb", data: 1 }, 400, "invalid_channel"],
      [{ channel: "a\u0000b", data: 1 }, 400, "invalid_channel"],
      [{ channel: "a\u007fb", data: 1 }, 400, "invalid_channel"],
      [{ channel: "é".repeat(513), data: 1 }, 400, "invalid_channel"],
      [{ channel: "ok" }, 400, "missing_data"],
      [{ channel: "ok", data: 1, type: "" }, 400, "invalid_type"],
      [{ channel: "ok", data: 1, type: "a\rb" }, 400, "invalid_type"],
      [{ channel: "ok", data: 1, type: "x".repeat(129) }, 400, "invalid_type"],
      [{ channel: "ok", data: 1, type: 5 }, 400, "invalid_type"],
      [{ channel: "ok", data: 1, id: "" }, 400, "invalid_id"],
      [{ channel: "ok", data: 1, id: 7 }, 400, "invalid_id"],
      [{ messages: [] }, 400, "empty_batch"],
      [{ messages: "x" }, 400, "invalid_batch"],
      [{ messages: [{ channel: "ok", data: 1 }, { channel: "bad\n", data: 1 }] }, 400, "invalid_channel"],
      [{ messages: [1, 2, 3, 4].map((i) => ({ channel: "ok", data: i })) }, 400, "batch_too_large"],
      [{ messages: [null] }, 400, "invalid_message"],
      [{ channel: "ok", data: "x".repeat(4000) }, 413, "payload_too_large"],
    ];
    for (const [body, status, code] of cases) {
      const res = await publish(r.base, body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(status);
      expect(res.json.error.code, JSON.stringify(body).slice(0, 80)).toBe(code);
      expect(typeof res.json.error.message).toBe("string");
    }
    // Invalid UTF-8 bytes.
    const raw = await fetch(`${r.base}/v1/publish`, { method: "POST", body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) });
    expect(raw.status).toBe(400);
    expect((await raw.json()).error.code).toBe("invalid_encoding");
    // Nothing was published by any of those, and the process still works.
    const ok = await publish(r.base, { channel: "ok", data: "fine" });
    expect(ok.status).toBe(200);
    await watcher.waitMessages(1);
    await new Promise((res) => setTimeout(res, 100));
    expect(watcher.envelopes().map((e) => e.data)).toEqual(["fine"]);
    watcher.close();
  });

  it("accepts any other character in channel names, glob metacharacters included", async () => {
    r = await startRelay(mode.env());
    const name = "weird *?[]\\ 日本 🎉 \"'";
    const c = await SseClient.open(`${r.base}/v1/events?channel=${encodeURIComponent(name)}`);
    await c.waitReady();
    expect((await publish(r.base, { channel: name, data: 1 })).status).toBe(200);
    await c.waitMessages(1);
    expect(c.envelopes()[0].channel).toBe(name);
    c.close();
  });

  it("publishes a batch in order and returns one result per message", async () => {
    r = await startRelay(mode.env());
    const c = await SseClient.open(`${r.base}/v1/events?channel=b1&channel=b2`);
    await c.waitReady();
    const res = await publish(r.base, { messages: [{ channel: "b1", data: 1 }, { channel: "b2", data: 2, type: "t" }, { channel: "b1", data: 3 }] });
    expect(res.status).toBe(200);
    expect(res.json.results).toHaveLength(3);
    expect(res.json.results.map((x: { channel: string }) => x.channel)).toEqual(["b1", "b2", "b1"]);
    await c.waitMessages(3);
    expect(c.envelopes().map((e) => e.data)).toEqual([1, 2, 3]);
    expect(c.envelopes().map((e) => e.id)).toEqual(res.json.results.map((x: { id: string }) => x.id));
    c.close();
  });

  it("publishes an idempotent id once and answers the first result with duplicate: true", async () => {
    r = await startRelay(mode.env());
    const c = await SseClient.open(`${r.base}/v1/events?channel=idem`);
    await c.waitReady();
    const first = await publish(r.base, { channel: "idem", data: 1, id: "evt-1" });
    const again = await publish(r.base, { channel: "idem", data: 2, id: "evt-1" });
    const other = await publish(r.base, { channel: "idem2", data: 3, id: "evt-1" });
    expect(first.json.duplicate).toBe(false);
    expect(again.json).toEqual({ ...first.json, duplicate: true });
    expect(other.json.duplicate).toBe(false);
    await publish(r.base, { channel: "idem", data: "marker" });
    await c.waitMessages(2);
    expect(c.envelopes().map((e) => e.data)).toEqual([1, "marker"]);
    c.close();
  });

  it("requires a key when FANOUT_PUBLISH_KEYS is set", async () => {
    r = await startRelay({ ...mode.env(), FANOUT_PUBLISH_KEYS: "k1,k2" });
    expect((await publish(r.base, { channel: "a", data: 1 })).status).toBe(401);
    expect((await publish(r.base, { channel: "a", data: 1 }, { Authorization: "Bearer nope" })).json.error.code).toBe("unauthorized");
    expect((await publish(r.base, { channel: "a", data: 1 }, { Authorization: "Bearer k2" })).status).toBe(200);
  });
});
