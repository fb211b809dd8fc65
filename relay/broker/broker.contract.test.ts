import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RedisServer } from "../../test/support/redis-server.js";
import { ZERO, comparePositions, parseMessageId } from "../../protocol/position.js";
import type { LogSettings } from "../../protocol/publish-script.js";
import type { Broker, BrokerListener, Delivery, MessageLog } from "./broker.js";
import { MemoryBroker } from "../memory/memory-broker.js";
import { RedisBroker } from "../redis/redis-broker.js";

/**
 * One contract, every broker: what the hub relies on. Built from a factory so the memory
 * and Redis brokers are held to the same behaviour.
 */
let server: RedisServer;
beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  await server.dispose();
});

let n = 0;
const settings = (): LogSettings => ({ prefix: `bc${n++}`, partitions: 4, maxLen: 1000, ttlMs: 0, dedupeSeconds: 60 });
const factories: Array<[string, () => Broker & MessageLog]> = [
  ["MemoryBroker", () => new MemoryBroker(settings())],
  ["RedisBroker", () => new RedisBroker(server.url, settings())],
];

describe.each(factories)("%s", (_name, make) => {
  let broker: Broker & MessageLog;
  let got: Delivery[];
  const listener: BrokerListener = {
    deliver: (d) => got.push(d),
    down: () => undefined,
    recovered: () => undefined,
    fault: () => undefined,
  };
  const start = async () => {
    got = [];
    broker = make();
    await broker.start(listener);
  };
  const settle = async (count: number) => {
    for (let i = 0; i < 100 && got.length < count; i++) await new Promise((r) => setTimeout(r, 10));
  };
  afterEach(async () => {
    await broker.close();
  });

  it("delivers to exact and pattern subscriptions, one copy each, in publish order", async () => {
    await start();
    await broker.subscribe("channel", "a:1");
    await broker.subscribe("pattern", "a:*");
    const res = await broker.publish([
      { channel: "a:1", data: "1" },
      { channel: "a:2", data: '"two"', type: "t" },
      { channel: "b", data: "3" },
    ]);
    expect(res.map((r) => r.receivers)).toEqual([2, 1, 0]);
    await settle(3);
    expect(got.map((d) => [d.channel, d.pattern, d.dataJson, d.type])).toEqual([
      ["a:1", undefined, "1", undefined],
      ["a:1", "a:*", "1", undefined],
      ["a:2", "a:*", '"two"', "t"],
    ]);
    expect(got[0].id).toBe(res[0].id);
    const mid = parseMessageId(res[0].id)!;
    expect(got[0].partition).toBe(mid.partition);
    expect(got[0].pos).toEqual(mid.pos);
  });

  it("stops delivering after unsubscribe", async () => {
    await start();
    await broker.subscribe("channel", "u");
    await broker.unsubscribe("channel", "u");
    await broker.subscribe("channel", "marker");
    await broker.publish([{ channel: "u", data: "1" }, { channel: "marker", data: "2" }]);
    await settle(1);
    expect(got.map((d) => d.channel)).toEqual(["marker"]);
  });

  it("keeps an idempotency window per channel and id", async () => {
    await start();
    const [a] = await broker.publish([{ channel: "i", data: "1", id: "x" }]);
    const [b] = await broker.publish([{ channel: "i", data: "2", id: "x" }]);
    const [c] = await broker.publish([{ channel: "j", data: "3", id: "x" }]);
    expect(b).toEqual({ ...a, duplicate: true });
    expect(c.duplicate).toBe(false);
    const p = parseMessageId(a.id)!.partition;
    const entries = await broker.read(p, ZERO, 100);
    expect(entries.filter((e) => e.channel === "i").map((e) => e.dataJson)).toEqual(["1"]);
  });

  it("logs every publish in order per partition and reads strictly after a position", async () => {
    await start();
    const res = await broker.publish(Array.from({ length: 20 }, (_, i) => ({ channel: `c${i % 3}`, data: String(i) })));
    for (let p = 0; p < broker.partitions; p++) {
      const all = await broker.read(p, ZERO, 1000);
      for (let i = 1; i < all.length; i++) expect(comparePositions(all[i - 1].pos, all[i].pos)).toBeLessThan(0);
      if (all.length > 1) expect(await broker.read(p, all[0].pos, 1000)).toEqual(all.slice(1));
      const st = await broker.state(p);
      expect(st.last).toEqual(all.length ? all[all.length - 1].pos : ZERO);
    }
    const ids = (await Promise.all(Array.from({ length: broker.partitions }, (_, p) => broker.read(p, ZERO, 1000)))).flat().map((e) => e.id);
    expect(ids.sort()).toEqual(res.map((r) => r.id).sort());
  });

  it("reports the retention boundary once entries are trimmed", async () => {
    got = [];
    broker = make();
    // A tiny history: Redis trims whole nodes (about 100 entries), so publish past that.
    (broker as unknown as { settings: LogSettings }).settings.maxLen = 3;
    await broker.start(listener);
    await broker.publish([{ channel: "r", data: "0" }]);
    const p = parseMessageId((await broker.publish([{ channel: "r", data: "1" }]))[0].id)!.partition;
    const first = (await broker.read(p, ZERO, 1))[0].pos;
    expect(comparePositions(first, (await broker.state(p)).gapBefore)).toBeGreaterThanOrEqual(0);
    for (let i = 0; i < 3; i++) await broker.publish(Array.from({ length: 100 }, () => ({ channel: "r", data: "2" })));
    expect(comparePositions(first, (await broker.state(p)).gapBefore)).toBeLessThan(0);
  });

  it("trims entries older than the log's age limit when it is next written, however many a call appends", async () => {
    got = [];
    broker = make();
    (broker as unknown as { settings: LogSettings }).settings.ttlMs = 300;
    await broker.start(listener);
    const p = parseMessageId((await broker.publish([{ channel: "aged", data: "0" }]))[0].id)!.partition;
    // Redis trims whole nodes (about 100 entries): old enough entries to fill a few.
    for (let i = 0; i < 3; i++) await broker.publish(Array.from({ length: 100 }, () => ({ channel: "aged", data: "1" })));
    const first = (await broker.read(p, ZERO, 1))[0].pos;
    expect(comparePositions(first, (await broker.state(p)).gapBefore)).toBeGreaterThanOrEqual(0);
    await new Promise((r) => setTimeout(r, 400));
    const last = await broker.publish(Array.from({ length: 5 }, () => ({ channel: "aged", data: "2" })));
    const gap = (await broker.state(p)).gapBefore;
    expect(comparePositions(first, gap)).toBeLessThan(0);
    // What was just written stays.
    expect(comparePositions(parseMessageId(last[0].id)!.pos, gap)).toBeGreaterThan(0);
  });
});
