import { describe, expect, it } from "vitest";
import { AlertEvaluator, MAX_SUBJECTS_PER_KIND, type AlertInput, type AlertSettings } from "./alerts.js";

const settings: AlertSettings = {
  inactiveSeconds: 300,
  channelSubscribers: 1000,
  memoryBytes: 1024,
  redisMemoryPercent: 80,
  windowSeconds: 60,
  catchUps: 5,
  resets: 100,
  slowDrops: 50,
};
const T0 = 1_700_000_000_000;
const quiet = (over: Partial<AlertInput> = {}): AlertInput => ({
  subscriptions: [],
  rssBytes: 10,
  redis: { reachable: true, usedMemoryBytes: 10, maxMemoryBytes: 100 },
  counters: { catchUps: 0, resets: 0, slowDrops: 0 },
  ...over,
});

describe("health alerts", () => {
  it("raise nothing for a healthy relay", () => {
    expect(new AlertEvaluator(settings).evaluate(quiet(), T0).alerts).toEqual([]);
  });

  it("flag a channel over the subscriber threshold, keep its `since` while it lasts, clear it when it drops", () => {
    const e = new AlertEvaluator(settings);
    const sub = (subscribers: number) => quiet({ subscriptions: [{ kind: "channel", name: "room:1", subscribers, lastActiveAt: T0 }] });
    expect(e.evaluate(sub(1000), T0).alerts).toEqual([]);
    expect(e.evaluate(sub(1001), T0 + 1000).alerts).toEqual([
      { kind: "channel_subscribers", severity: "warning", subject: "channel:room:1", value: 1001, threshold: 1000, since: T0 + 1000 },
    ]);
    expect(e.evaluate(sub(1500), T0 + 2000).alerts[0]).toMatchObject({ value: 1500, since: T0 + 1000 });
    expect(e.evaluate(sub(10), T0 + 3000).alerts).toEqual([]);
    // Raised again later: a new episode, a new `since`.
    expect(e.evaluate(sub(2000), T0 + 4000).alerts[0].since).toBe(T0 + 4000);
  });

  it("flag channels and patterns idle for the inactive period, not before", () => {
    const e = new AlertEvaluator(settings);
    const input = quiet({ subscriptions: [{ kind: "pattern", name: "feed:*", subscribers: 1, lastActiveAt: T0 }] });
    expect(e.evaluate(input, T0 + 299_999).alerts).toEqual([]);
    expect(e.evaluate(input, T0 + 300_000).alerts).toEqual([
      { kind: "channel_inactive", severity: "info", subject: "pattern:feed:*", value: 300, threshold: 300, since: T0 + 300_000 },
    ]);
  });

  it("list at most a bounded number of channels per kind and count the rest", () => {
    const subs = Array.from({ length: MAX_SUBJECTS_PER_KIND + 7 }, (_, i) => ({ kind: "channel" as const, name: `c${i}`, subscribers: 5000, lastActiveAt: T0 }));
    const r = new AlertEvaluator(settings).evaluate(quiet({ subscriptions: subs }), T0);
    expect(r.alerts.filter((a) => a.kind === "channel_subscribers")).toHaveLength(MAX_SUBJECTS_PER_KIND);
    expect(r.omitted).toEqual({ channel_subscribers: 7 });
  });

  it("flag relay memory, Redis memory over its percentage of maxmemory, and Redis unreachable", () => {
    const e = new AlertEvaluator(settings);
    const r = e.evaluate(quiet({ rssBytes: 2048, redis: { reachable: true, usedMemoryBytes: 81, maxMemoryBytes: 100 } }), T0).alerts;
    expect(r.map((a) => [a.kind, a.value, a.threshold])).toEqual([
      ["relay_memory", 2048, 1024],
      ["redis_memory", 81, 80],
    ]);
    // No maxmemory: no percentage to judge.
    expect(e.evaluate(quiet({ redis: { reachable: true, usedMemoryBytes: 10 ** 9, maxMemoryBytes: 0 } }), T0).alerts).toEqual([]);
    expect(e.evaluate(quiet({ redis: { reachable: false } }), T0).alerts).toEqual([
      { kind: "redis_unreachable", severity: "critical", subject: "redis", value: 1, threshold: 0, since: T0 },
    ]);
    // The embedded broker has no Redis to lose.
    expect(e.evaluate(quiet({ redis: undefined }), T0).alerts).toEqual([]);
  });

  it("flag catch-ups, resets and slow-consumer drops spiking over the window, and clear once the window passes", () => {
    const e = new AlertEvaluator(settings);
    const at = (s: number, catchUps: number, resets: number, slowDrops: number) => e.evaluate(quiet({ counters: { catchUps, resets, slowDrops } }), T0 + s * 1000).alerts;
    // Counts from before the relay's first evaluation are not a spike.
    expect(at(0, 40, 400, 400)).toEqual([]);
    expect(at(10, 45, 500, 450)).toEqual([]);
    const spiking = at(20, 46, 501, 451);
    expect(spiking.map((a) => [a.kind, a.value, a.threshold])).toEqual([
      ["catchups_spike", 6, 5],
      ["resets_spike", 101, 100],
      ["slow_consumer_drops_spike", 51, 50],
    ]);
    // Nothing new: the events age out of the 60 s window.
    expect(at(50, 46, 501, 451)).toHaveLength(3);
    expect(at(70, 46, 501, 451)).toEqual([]);
  });

  it("a threshold of 0 turns its alert off", () => {
    const off: AlertSettings = { ...settings, inactiveSeconds: 0, channelSubscribers: 0, memoryBytes: 0, redisMemoryPercent: 0, catchUps: 0, resets: 0, slowDrops: 0 };
    const e = new AlertEvaluator(off);
    const input = quiet({ subscriptions: [{ kind: "channel", name: "a", subscribers: 10 ** 6, lastActiveAt: 0 }], rssBytes: 10 ** 12, redis: { reachable: true, usedMemoryBytes: 99, maxMemoryBytes: 100 } });
    e.evaluate(input, T0);
    expect(e.evaluate({ ...input, counters: { catchUps: 10 ** 6, resets: 10 ** 6, slowDrops: 10 ** 6 } }, T0 + 1000).alerts).toEqual([]);
  });
});
