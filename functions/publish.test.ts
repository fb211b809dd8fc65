import { signFanoutToken } from "../protocol/auth/sign-token.js";
import { describe, expect, inject, it } from "vitest";
import { call, logEntries, plainSubscriber, testEnv, uniq } from "./test/helpers.js";

const env = testEnv();

describe("POST /v1/publish", () => {
  it("runs inside workerd", () => {
    expect(navigator.userAgent).toBe("Cloudflare-Workers");
  });

  it("publishes one message into the log and to plain Redis subscribers", async () => {
    const channel = uniq("orders:events");
    const sub = await plainSubscriber(channel);
    try {
      const r = await call(env, "/v1/publish", { body: { channel, type: "order.created", data: { n: 1, s: "é" } } });
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ id: expect.stringMatching(/^\d+-\d+-\d+$/), channel, receivers: 1, duplicate: false });
      const envelope = JSON.parse(await sub.next());
      expect(envelope).toEqual({ id: r.json.id, channel, type: "order.created", data: { n: 1, s: "é" }, ts: expect.any(Number), mac: expect.stringMatching(/^[0-9a-f]{40}$/) });
      const log = await logEntries(env, channel);
      expect(log).toHaveLength(1);
      expect(r.json.id.endsWith(`-${log[0].id}`)).toBe(true);
      expect(JSON.parse(log[0].fields.d)).toEqual({ n: 1, s: "é" });
      expect(log[0].fields.t).toBe("order.created");
    } finally {
      sub.close();
    }
  });

  it("publishes a batch in order", async () => {
    const a = uniq("batch:a");
    const b = uniq("batch:b");
    const r = await call(env, "/v1/publish", {
      body: { messages: [{ channel: a, data: 1 }, { channel: b, data: "two", type: "t" }, { channel: a, data: [3] }] },
    });
    expect(r.status).toBe(200);
    expect(r.json.results.map((x: any) => [x.channel, x.duplicate])).toEqual([
      [a, false],
      [b, false],
      [a, false],
    ]);
    expect((await logEntries(env, a)).map((e) => e.fields.d)).toEqual(["1", "[3]"]);
    expect((await logEntries(env, b)).map((e) => e.fields.d)).toEqual(['"two"']);
  });

  it("refuses channels reserved for the relays (<prefix>:relay:*) with 400 reserved_channel, publishing nothing", async () => {
    const a = uniq("fine");
    const r = await call(env, "/v1/publish", { body: { messages: [{ channel: a, data: 1 }, { channel: `${env.FANOUT_LOG_PREFIX}:relay:x`, data: 2 }] } });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe("reserved_channel");
    expect(await logEntries(env, a)).toEqual([]);
  });

  it("accepts glob metacharacters and a 1024-byte channel", async () => {
    for (const channel of [uniq("user:*:[a-z]?\\x"), "é".repeat(512)]) {
      const r = await call(env, "/v1/publish", { body: { channel, data: null } });
      expect(r.status).toBe(200);
      expect(r.json.channel).toBe(channel);
    }
  });

  it("publishes the same id on the same channel once", async () => {
    const channel = uniq("idem");
    const first = await call(env, "/v1/publish", { body: { channel, data: 1, id: "evt-123" } });
    const again = await call(env, "/v1/publish", { body: { channel, data: 2, id: "evt-123" } });
    expect(first.json.duplicate).toBe(false);
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ ...first.json, duplicate: true });
    const batch = await call(env, "/v1/publish", {
      body: { messages: [{ channel, data: 3, id: "evt-123" }, { channel, data: 4, id: "evt-124" }] },
    });
    expect(batch.json.results.map((x: any) => x.duplicate)).toEqual([true, false]);
    expect((await logEntries(env, channel)).map((e) => e.fields.d)).toEqual(["1", "4"]);
    // Same id, other channel: a different message.
    const other = await call(env, "/v1/publish", { body: { channel: `${channel}:other`, data: 5, id: "evt-123" } });
    expect(other.json.duplicate).toBe(false);
  });
});

describe("envelope meta at the edge", () => {
  const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

  it("stores meta in the log entry and the published payload, adding the traceparent header when the body has none", async () => {
    const channel = uniq("meta");
    const sub = await plainSubscriber(channel);
    try {
      const meta = { source: "checkout", correlation_id: "c-7" };
      const r = await call(env, "/v1/publish", { body: { channel, data: 1, meta }, headers: { traceparent: TP } });
      expect(r.status).toBe(200);
      const expected = { ...meta, traceparent: TP };
      expect(JSON.parse(await sub.next())).toEqual({ id: r.json.id, channel, meta: expected, data: 1, ts: expect.any(Number), mac: expect.any(String) });
      const own = "00-11111111111111111111111111111111-2222222222222222-00";
      const b = await call(env, "/v1/publish", { body: { messages: [{ channel, data: 2, meta: { traceparent: own } }, { channel, data: 3 }] }, headers: { traceparent: "bogus" } });
      expect(b.status).toBe(200);
      const log = await logEntries(env, channel);
      expect(log.map((e) => e.fields.m)).toEqual([JSON.stringify(expected), JSON.stringify({ traceparent: own }), undefined]);
    } finally {
      sub.close();
    }
  });

  it("refuses bad meta with 400 invalid_meta and publishes nothing", async () => {
    const channel = uniq("meta-bad");
    for (const meta of [{ n: 1 }, "x", { traceparent: "00-x" }, Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]))]) {
      const r = await call(env, "/v1/publish", { body: { messages: [{ channel, data: 1 }, { channel, data: 2, meta }] } });
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe("invalid_meta");
    }
    expect(await logEntries(env, channel)).toEqual([]);
  });
});

describe("publisher auth", () => {
  it("needs a configured key", async () => {
    const channel = uniq("auth");
    const missing = await call(env, "/v1/publish", { body: { channel, data: 1 }, key: null });
    expect(missing.status).toBe(401);
    expect(missing.json.error.code).toBe("unauthorized");
    expect(missing.headers.get("www-authenticate")).toMatch(/^Bearer/);
    const wrong = await call(env, "/v1/publish", { body: { channel, data: 1 }, key: "pk-test-3" });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error.code).toBe("unauthorized");
    const basic = await call(env, "/v1/publish", { body: { channel, data: 1 }, key: null, headers: { authorization: "Basic cGs6eA==" } });
    expect(basic.status).toBe(401);
    expect((await call(env, "/v1/publish", { body: { channel, data: 1 }, key: "pk-test-2" })).status).toBe(200);
    expect(await logEntries(env, channel)).toHaveLength(1);
  });

  it("refuses everyone when no key is configured, unless anonymous publishing is allowed", async () => {
    const closed = testEnv({ FANOUT_PUBLISH_KEYS: "" });
    const r = await call(closed, "/v1/publish", { body: { channel: "x", data: 1 }, key: null });
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe("unauthorized");
    const open = testEnv({ FANOUT_PUBLISH_KEYS: "", FANOUT_ALLOW_ANONYMOUS_PUBLISH: "true" });
    expect((await call(open, "/v1/publish", { body: { channel: "x", data: 1 }, key: null })).status).toBe(200);
  });
});

describe("JWT publishers at the edge", () => {
  it("may publish only where their fanout.publish globs allow; one forbidden item refuses the batch", async () => {
    const jwtEnv = testEnv({ FANOUT_PUBLISH_KEYS: "", FANOUT_JWT_SECRET: "edge-secret-0123456789" });
    const prefix = uniq("jwt");
    const token = await signFanoutToken("edge-secret-0123456789", { publish: [`${prefix}:*`] }, { expiresIn: 60 });
    const ok = await call(jwtEnv, "/v1/publish", { body: { channel: `${prefix}:a`, data: 1 }, key: token });
    expect(ok.status).toBe(200);
    const denied = await call(jwtEnv, "/v1/publish", { body: { messages: [{ channel: `${prefix}:b`, data: 2 }, { channel: "elsewhere", data: 3 }] }, key: token });
    expect(denied.status).toBe(403);
    expect(await logEntries(jwtEnv, `${prefix}:b`)).toHaveLength(0);
    const forged = await signFanoutToken("another-secret-0123456789", { publish: ["*"] }, { expiresIn: 60 });
    expect((await call(jwtEnv, "/v1/publish", { body: { channel: `${prefix}:a`, data: 1 }, key: forged })).status).toBe(401);
    const expired = await signFanoutToken("edge-secret-0123456789", { publish: ["*"] }, { expiresIn: -120 });
    expect((await call(jwtEnv, "/v1/publish", { body: { channel: `${prefix}:a`, data: 1 }, key: expired })).status).toBe(401);
  });
});

describe("bad input is a 4xx, never a 500, and publishes nothing", () => {
  const channel = uniq("bad");
  const cases: [string, Parameters<typeof call>[2], number, string][] = [
    ["bad JSON", { raw: "{nope" }, 400, "invalid_json"],
    ["empty body", { raw: "" }, 400, "invalid_json"],
    ["invalid UTF-8", { raw: new Uint8Array([0x7b, 0xff, 0x7d]) }, 400, "invalid_encoding"],
    ["a JSON array", { body: [1] }, 400, "invalid_body"],
    ["a JSON string", { body: "hi" }, 400, "invalid_body"],
    ["missing channel", { body: { data: 1 } }, 400, "invalid_channel"],
    ["empty channel", { body: { channel: "", data: 1 } }, 400, "invalid_channel"],
    ["numeric channel", { body: { channel: 7, data: 1 } }, 400, "invalid_channel"],
    ["LF in channel", { body: { channel: "a\nb", data: 1 } }, 400, "invalid_channel"],
    ["CR in channel", { body: { channel: "a\rb", data: 1 } }, 400, "invalid_channel"],
    ["NUL in channel", { body: { channel: "a\u0000b", data: 1 } }, 400, "invalid_channel"],
    ["DEL in channel", { body: { channel: "a\u007fb", data: 1 } }, 400, "invalid_channel"],
    ["channel over 1024 bytes", { body: { channel: "é".repeat(513), data: 1 } }, 400, "invalid_channel"],
    ["missing data", { body: { channel } }, 400, "missing_data"],
    ["LF in type", { body: { channel, data: 1, type: "a\nid: 1" } }, 400, "invalid_type"],
    ["tab in type", { body: { channel, data: 1, type: "a\tb" } }, 400, "invalid_type"],
    ["empty type", { body: { channel, data: 1, type: "" } }, 400, "invalid_type"],
    ["type over 128 characters", { body: { channel, data: 1, type: "t".repeat(129) } }, 400, "invalid_type"],
    ["non-string type", { body: { channel, data: 1, type: 5 } }, 400, "invalid_type"],
    ["non-string id", { body: { channel, data: 1, id: 5 } }, 400, "invalid_id"],
    ["LF in id", { body: { channel, data: 1, id: "a\nb" } }, 400, "invalid_id"],
    ["empty batch", { body: { messages: [] } }, 400, "empty_batch"],
    ["messages not an array", { body: { messages: {} } }, 400, "invalid_batch"],
    ["batch over FANOUT_MAX_BATCH", { body: { messages: Array.from({ length: 101 }, () => ({ channel, data: 1 })) } }, 400, "batch_too_large"],
    ["one bad item in a batch", { body: { messages: [{ channel, data: 1 }, { channel: "a\nb", data: 2 }] } }, 400, "invalid_channel"],
    ["a batch item without data", { body: { messages: [{ channel, data: 1 }, { channel }] } }, 400, "missing_data"],
    ["a non-object batch item", { body: { messages: [{ channel, data: 1 }, 3] } }, 400, "invalid_message"],
  ];
  it.each(cases)("%s", async (_name, opts, status, code) => {
    const r = await call(env, "/v1/publish", opts);
    expect(r.status).toBe(status);
    expect(r.json.error.code).toBe(code);
    expect(typeof r.json.error.message).toBe("string");
    expect(await logEntries(env, channel)).toHaveLength(0);
  });

  it("a body over FANOUT_MAX_BODY_BYTES is 413", async () => {
    const small = testEnv({ FANOUT_MAX_BODY_BYTES: "1024" });
    const r = await call(small, "/v1/publish", { body: { channel, data: "x".repeat(2000) } });
    expect(r.status).toBe(413);
    expect(r.json.error.code).toBe("payload_too_large");
    const batch = await call(small, "/v1/publish", { body: { messages: Array.from({ length: 50 }, () => ({ channel, data: "0123456789" })) } });
    expect(batch.status).toBe(413);
  });

  it("a batch is checked for authorization before anything is published", async () => {
    const r = await call(env, "/v1/publish", { body: { messages: [{ channel, data: 1 }] }, key: "nope" });
    expect(r.status).toBe(401);
    expect(await logEntries(env, channel)).toHaveLength(0);
  });
});

describe("Redis unreachable", () => {
  // workerd logs every outbound connection that fails as "uncaught exception … Network
  // connection lost", even when the worker catches it (as here): this test's one failed
  // connection prints that once, by design.
  it("is a 503 with Retry-After after one attempt (the breaker, not the REST client, decides when to try again), then fails fast", async () => {
    const cut = async () => Number(await (await fetch(`${inject("dropUrl")}/count`)).text());
    const down = testEnv({ UPSTASH_REDIS_REST_URL: inject("dropUrl"), FANOUT_BREAKER_THRESHOLD: "1", FANOUT_BREAKER_COOLDOWN_MS: "30000" });
    const before = await cut();
    const r = await call(down, "/v1/publish", { body: { channel: "x", data: 1 } });
    expect(r.status).toBe(503);
    expect(r.json.error.code).toBe("broker_unavailable");
    expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await cut()).toBe(before + 1);

    const open = await call(down, "/v1/publish", { body: { channel: "x", data: 1 } });
    expect(open.status).toBe(503);
    expect(Number(open.headers.get("retry-after"))).toBeGreaterThan(1);
    expect(open.json.error.message).toMatch(/not retrying/);
    // The open breaker answered without a network call.
    expect(await cut()).toBe(before + 1);
  });

  it("is a 503 when the REST endpoint is up but its Redis is not", async () => {
    const broken = testEnv({ UPSTASH_REDIS_REST_URL: inject("brokenRestUrl") });
    const r = await call(broken, "/v1/publish", { body: { channel: "x", data: 1 } });
    expect(r.status).toBe(503);
    expect(r.headers.get("retry-after")).toBe("1");
  });

  it("bad input is still a 400 while Redis is down", async () => {
    const down = testEnv({ UPSTASH_REDIS_REST_URL: inject("deadUrl") });
    expect((await call(down, "/v1/publish", { raw: "{" })).status).toBe(400);
  });
});

describe("bad input at the edge (same route modules inside workerd)", () => {
  const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

  it("refuses deep JSON with 400 json_too_deep on publish, invalidate and tickets", async () => {
    const channel = uniq("deep");
    expect((await call(env, "/v1/publish", { body: { channel, data: JSON.parse(nested(63)) } })).status).toBe(200);
    for (const depth of [64, 4113, 10_000]) {
      for (const [path, raw] of [
        ["/v1/publish", `{"channel":"${channel}","data":${nested(depth)}}`],
        ["/v1/invalidate", `{"keys":${nested(depth)}}`],
        ["/v1/tickets", `{"channels":${nested(depth)}}`],
      ]) {
        const r = await call(env, path, { raw });
        expect([r.status, r.json.error?.code], `${path} at ${depth}`).toEqual([400, "json_too_deep"]);
      }
    }
    expect(await logEntries(env, channel)).toHaveLength(1);
  });

  it("issues tickets only for patterns a relay connection could hold (400 pattern_too_complex)", async () => {
    const costly = await call(env, "/v1/tickets", { body: { patterns: [`*${"a".repeat(200)}b`] } });
    expect([costly.status, costly.json.error?.code]).toEqual([400, "pattern_too_complex"]);
    const together = await call(env, "/v1/tickets", { body: { patterns: Array.from({ length: 12 }, (_, i) => `*${"x".repeat(80)}${i}`) } });
    expect([together.status, together.json.error?.code]).toEqual([400, "pattern_too_complex"]);
    const ok = await call(env, "/v1/tickets", { body: { patterns: ["user:*:notifications", "chat:[a-z]*"] } });
    expect(ok.status).toBe(200);
  });

  it("refuses lone surrogates in type, id and invalidation keys, and numbers beyond a double", async () => {
    const channel = uniq("lone");
    for (const [path, body, code] of [
      ["/v1/publish", { channel, data: 1, type: "k\ud800" }, "invalid_type"],
      ["/v1/publish", { channel, data: 1, id: "k\ud800" }, "invalid_id"],
      ["/v1/publish", { channel, data: 1, id: "k\udbff" }, "invalid_id"],
      ["/v1/invalidate", { keys: ["k\udbff"] }, "invalid_keys"],
    ] as const) {
      const r = await call(env, path, { body });
      expect([r.status, r.json.error?.code], JSON.stringify(body)).toEqual([400, code]);
    }
    const huge = await call(env, "/v1/publish", { raw: `{"channel":"${channel}","data":1e400}` });
    expect([huge.status, huge.json.error?.code]).toEqual([400, "invalid_number"]);
    const pair = await call(env, "/v1/publish", { body: { channel, data: 1, id: "k\ud83d\ude00", type: "\ud83d\ude00" } });
    expect(pair.status).toBe(200);
    expect(await logEntries(env, channel)).toHaveLength(1);
  });
});
