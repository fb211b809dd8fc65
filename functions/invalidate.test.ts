import { Redis } from "@upstash/redis/cloudflare";
import { describe, expect, inject, it } from "vitest";
import { tagSetKey } from "../routes/cache-tags.js";
import { storeCacheEntry } from "./cache-entry.js";
import { call, logEntries, plainSubscriber, redis, testEnv, uniq } from "./test/helpers.js";

const env = testEnv();
const app = new Redis({ url: inject("restUrl"), token: inject("restToken"), automaticDeserialization: false, enableTelemetry: false });
const prefix = env.FANOUT_LOG_PREFIX;

describe("storeCacheEntry", () => {
  it("stores the entry and indexes it under each tag; tag sets only ever get a longer expiry", async () => {
    const key = uniq("page");
    const tag = uniq("tag");
    await storeCacheEntry(app, key, "<html>", { tags: [tag], ttlSeconds: 600, prefix });
    expect(await redis("GET", key)).toBe("<html>");
    expect(await redis("SMEMBERS", tagSetKey(tag, prefix))).toEqual([key]);
    expect(await redis("TTL", tagSetKey(tag, prefix))).toBeGreaterThan(590);
    await storeCacheEntry(app, uniq("page"), "x", { tags: [tag], ttlSeconds: 60, prefix });
    expect(await redis("TTL", tagSetKey(tag, prefix))).toBeGreaterThan(590);
    await storeCacheEntry(app, uniq("page"), "x", { tags: [tag], prefix });
    expect(await redis("TTL", tagSetKey(tag, prefix))).toBe(-1);
  });
});

describe("POST /v1/invalidate", () => {
  it("deletes keys and tagged keys, then broadcasts once on invalidate:<scope>", async () => {
    const scope = uniq("docs");
    const [k1, k2, t1a, t1b, t2a, keep] = ["k1", "k2", "t1a", "t1b", "t2a", "keep"].map(uniq);
    const [tag1, tag2] = [uniq("tag1"), uniq("tag2")];
    await redis("SET", k1, "v");
    await storeCacheEntry(app, t1a, "v", { tags: [tag1], prefix });
    await storeCacheEntry(app, t1b, "v", { tags: [tag1, tag2], prefix });
    await storeCacheEntry(app, t2a, "v", { tags: [tag2], prefix });
    await storeCacheEntry(app, keep, "v", { tags: [uniq("other")], prefix });
    const sub = await plainSubscriber(`invalidate:${scope}`);
    try {
      const r = await call(env, "/v1/invalidate", { body: { keys: [k1, k2], tags: [tag1, tag2], paths: ["/docs/*"], scope } });
      expect(r.status).toBe(200);
      // k2 never existed: deleted counts keys that were there.
      expect(r.json).toEqual({ id: expect.stringMatching(/^\d+-\d+-\d+$/), receivers: 1, deleted: 4 });
      for (const k of [k1, t1a, t1b, t2a]) expect(await redis("EXISTS", k)).toBe(0);
      expect(await redis("EXISTS", keep)).toBe(1);
      expect(await redis("SCARD", tagSetKey(tag1, prefix))).toBe(0);
      const envelope = JSON.parse(await sub.next());
      expect(envelope).toEqual({
        id: r.json.id,
        channel: `invalidate:${scope}`,
        type: "invalidate",
        data: { scope, keys: [k1, k2], tags: [tag1, tag2], paths: ["/docs/*"], source: "api" },
        ts: expect.any(Number),
        mac: expect.stringMatching(/^[0-9a-f]{40}$/),
      });
      await expect(sub.next(200)).rejects.toThrow(/no message/);
      // The broadcast is in the durable log too, for SSE clients resuming later.
      expect(await logEntries(env, `invalidate:${scope}`)).toHaveLength(1);
    } finally {
      sub.close();
    }
  });

  it("defaults the scope and carries a deploy id", async () => {
    const r = await call(env, "/v1/invalidate", { body: { paths: ["/"], deployId: "build-7" } });
    expect(r.status).toBe(200);
    expect(r.json.deleted).toBe(0);
    const log = await logEntries(env, "invalidate:default");
    expect(JSON.parse(log.at(-1)!.fields.d)).toEqual({ scope: "default", keys: [], tags: [], paths: ["/"], deployId: "build-7", source: "api" });
  });

  it("needs a publisher key and deletes nothing without one", async () => {
    const k = uniq("guarded");
    await redis("SET", k, "v");
    const r = await call(env, "/v1/invalidate", { body: { keys: [k] }, key: null });
    expect(r.status).toBe(401);
    expect(await redis("EXISTS", k)).toBe(1);
  });

  const bad: [string, unknown, string][] = [
    ["keys not an array", { keys: "a" }, "invalid_keys"],
    ["an empty key", { keys: [""] }, "invalid_keys"],
    ["a non-string tag", { tags: [1] }, "invalid_tags"],
    ["a control character in a tag", { tags: ["a\nb"] }, "invalid_tags"],
    ["a control character in a path", { paths: ["/a\r\n"] }, "invalid_paths"],
    ["an empty scope", { scope: "" }, "invalid_scope"],
    ["a control character in the scope", { scope: "a\nb" }, "invalid_channel"],
    ["too many items", { keys: Array.from({ length: 1001 }, (_, i) => `k${i}`) }, "too_many_items"],
    ["a JSON array", [], "invalid_body"],
  ];
  it.each(bad)("%s is a 400", async (_name, body, code) => {
    const r = await call(env, "/v1/invalidate", { body });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe(code);
  });

  it("bad JSON is a 400 and a big body a 413", async () => {
    expect((await call(env, "/v1/invalidate", { raw: "{" })).json.error.code).toBe("invalid_json");
    const small = testEnv({ FANOUT_MAX_BODY_BYTES: "100" });
    expect((await call(small, "/v1/invalidate", { body: { keys: ["k".repeat(200)] } })).status).toBe(413);
  });

  it("is a 503 with Retry-After when Redis is unreachable", async () => {
    const down = testEnv({ UPSTASH_REDIS_REST_URL: inject("brokenRestUrl") });
    const r = await call(down, "/v1/invalidate", { body: { keys: ["a"], tags: ["b"] } });
    expect(r.status).toBe(503);
    expect(r.headers.get("retry-after")).not.toBeNull();
  });
});
