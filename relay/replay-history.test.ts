import { describe, expect, it } from "vitest";
import { ZERO } from "../protocol/position.js";
import { partitionOf } from "../protocol/partition.js";
import type { Delivery } from "./broker/broker.js";
import type { Client } from "./client.js";
import { MemoryBroker } from "./memory/memory-broker.js";
import { replayHistory } from "./replay.js";

/** A stream that takes whatever it is sent at once: the test is about what is read, not pacing. */
function stream(): { client: Client; sent: Delivery[] } {
  const sent: Delivery[] = [];
  const client = { sendHistory: (d: Delivery) => sent.push(d), conn: { held: () => 0, drained: async () => undefined, closed: false } } as unknown as Client;
  return { client, sent };
}

describe("history for names added to an open stream (replayHistory)", () => {
  it("sends every partition's history up to the moment of adding, also when an earlier partition has moved on since", async () => {
    const partitions = 4;
    const log = new MemoryBroker({ prefix: "rh", partitions, maxLen: 1000, ttlMs: 0, dedupeSeconds: 60 });
    await log.start({ deliver: () => undefined, down: () => undefined, recovered: () => undefined, fault: () => undefined });
    const names = Array.from({ length: 64 }, (_, i) => `h:${i}`);
    const a = names.find((n) => partitionOf(n, partitions) === 0)!;
    const b = names.find((n) => partitionOf(n, partitions) === 1)!;
    await log.publish([
      { channel: a, data: '"a1"' },
      { channel: b, data: '"b1"' },
      { channel: b, data: '"b2"' },
    ]);
    // The moment of adding; then partition 0 moves on (live traffic the stream gets live).
    const upTo = await log.settled();
    await log.publish([{ channel: a, data: '"a2"' }]);
    const since = Array.from({ length: partitions }, () => ZERO);
    const { client, sent } = stream();
    const r = await replayHistory(log, client, [0, 1], since, upTo, (ch) => (ch === a || ch === b ? true : undefined), 100);
    expect(sent.map((d) => d.dataJson)).toEqual(['"a1"', '"b1"', '"b2"']);
    expect(r).toEqual({ sent: 3, reset: undefined });
  });
});
