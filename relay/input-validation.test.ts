import { describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { createHmac } from "node:crypto";
import { publish } from "../test/support/sse-client.js";
import { relayFixture } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";

const modes = brokerModes();

async function post(base: string, path: string, body: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) };
  } catch {
    return { status: res.status, json: text };
  }
}

const nested = (depth: number): string => "[".repeat(depth) + "]".repeat(depth);

describe.each(modes)("request bodies on the $name", (mode) => {
  const { start, open } = relayFixture();

  it("refuses JSON nested past the limit with 400 json_too_deep on every JSON route, and keeps serving", async () => {
    const r = await start(mode.env());
    const watcher = await open("pattern=deep:*");
    await watcher.waitReady();
    // The body object is level 1, so data may nest 63 levels and its envelope 64.
    const deepest = JSON.parse(nested(63));
    expect((await publish(r.base, { channel: "deep:ok", data: deepest })).status).toBe(200);
    for (const depth of [64, 4113, 10_000]) {
      for (const [path, body] of [
        ["/v1/publish", `{"channel":"deep:no","data":${nested(depth)}}`],
        ["/v1/publish", `{"messages":[{"channel":"deep:no","data":${nested(depth)}}]}`],
        ["/v1/invalidate", `{"keys":${nested(depth)}}`],
        ["/v1/tickets", `{"channels":${nested(depth)}}`],
      ]) {
        const res = await post(r.base, path, body);
        expect([res.status, res.json.error?.code], `${path} at depth ${depth}`).toEqual([400, "json_too_deep"]);
      }
    }
    // Brackets inside strings are text, not nesting.
    expect((await publish(r.base, { channel: "deep:text", data: "[".repeat(10_000) })).status).toBe(200);
    await watcher.waitMessages(2);
    expect(watcher.envelopes().map((e) => e.channel)).toEqual(["deep:ok", "deep:text"]);
    expect(watcher.envelopes()[0].data).toEqual(deepest);
  });

  it("refuses deep JSON in a signed hook body too (400 json_too_deep, after the signature check)", async () => {
    const secret = "hook-secret-0123456789";
    const r = await start({ ...mode.env(), FANOUT_HOOK_SECRET: secret });
    const body = `{"keys":${nested(10_000)}}`;
    const sign = (b: string) => `sha256=${createHmac("sha256", secret).update(b).digest("hex")}`;
    const res = await fetch(`${r.base}/v1/hooks/generic`, { method: "POST", headers: { "X-Fanout-Signature": sign(body) }, body });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe("json_too_deep");
    const unsigned = await fetch(`${r.base}/v1/hooks/generic`, { method: "POST", headers: { "X-Fanout-Signature": sign("{}") }, body });
    expect(unsigned.status).toBe(401);
  });

  it("refuses numbers beyond a double (they would arrive as null) with 400 invalid_number", async () => {
    const r = await start(mode.env());
    const watcher = await open("channel=num");
    await watcher.waitReady();
    for (const n of ["1e400", "-1e999999", "9".repeat(400)]) {
      const res = await post(r.base, "/v1/publish", `{"channel":"num","data":{"n":${n}}}`);
      expect([res.status, res.json.error?.code], n).toEqual([400, "invalid_number"]);
    }
    // Large but finite numbers, and exponent-like text inside strings, are fine.
    expect((await post(r.base, "/v1/publish", `{"channel":"num","data":[1.7e308,"1e999"]}`)).status).toBe(200);
    // `__proto__` is an ordinary key: it travels as data and changes nothing else.
    expect((await post(r.base, "/v1/publish", `{"channel":"num","data":{"__proto__":{"x":1}},"__proto__":{"type":"t"}}`)).status).toBe(200);
    await watcher.waitMessages(2);
    const [a, b] = watcher.envelopes();
    expect(a.data).toEqual([1.7e308, "1e999"]);
    expect(Object.keys(b.data as object)).toEqual(["__proto__"]);
    expect(b.type).toBeUndefined();
  });

  it("refuses lone surrogates in type and id (400 invalid_type / invalid_id): they would collide in Redis", async () => {
    const r = await start(mode.env());
    for (const [body, code] of [
      [{ channel: "s", data: 1, type: "k\ud800" }, "invalid_type"],
      [{ channel: "s", data: 1, type: "\udc00k" }, "invalid_type"],
      [{ channel: "s", data: 1, id: "k\ud800" }, "invalid_id"],
      [{ channel: "s", data: 1, id: "k\udbff" }, "invalid_id"],
      [{ messages: [{ channel: "s", data: 1, id: "ok" }, { channel: "s", data: 1, id: "\ude00" }] }, "invalid_id"],
    ] as const) {
      const res = await publish(r.base, body);
      expect([res.status, res.json.error?.code], JSON.stringify(body)).toEqual([400, code]);
    }
    // Pairs are fine, and two different pairs are two different ids.
    const a = await publish(r.base, { channel: "s", data: 1, id: "k\ud83d\ude00", type: "\ud83d\ude00" });
    const b = await publish(r.base, { channel: "s", data: 1, id: "k\ud83d\ude01" });
    expect([a.status, a.json.duplicate, b.status, b.json.duplicate]).toEqual([200, false, 200, false]);
  });

  it("refuses lone surrogates in invalidation keys, tags, paths and deployId (they would name another Redis key)", async () => {
    const r = await start(mode.env());
    const server = mode.redis();
    const redis = server ? new Redis(server.url) : undefined;
    try {
      await redis?.set("k\ufffd", "kept");
      for (const [body, code] of [
        [{ keys: ["k\udbff"] }, "invalid_keys"],
        [{ tags: ["t\ud800"] }, "invalid_tags"],
        [{ paths: ["/\udfff"] }, "invalid_paths"],
        [{ deployId: "d\ud800" }, "invalid_deploy_id"],
      ] as const) {
        const res = await post(r.base, "/v1/invalidate", JSON.stringify(body));
        expect([res.status, res.json.error?.code], JSON.stringify(body)).toEqual([400, code]);
      }
      if (redis) expect(await redis.get("k\ufffd")).toBe("kept");
    } finally {
      redis?.disconnect();
    }
  });
});
