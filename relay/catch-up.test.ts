import { describe, expect, it } from "vitest";
import { relayFixture } from "../test/support/relay-harness.js";
import { partitionOf } from "../protocol/partition.js";
import type { LogEntry, MessageLog } from "./broker/broker.js";
import type { Position } from "../protocol/position.js";

/** A channel in log partition 0: the first the catch-up reads, so it is done before the rest. */
function channelInFirstPartition(): string {
  for (let i = 0; ; i++) if (partitionOf(`c${i}`, 4) === 0) return `c${i}`;
}

/** Runs `meanwhile` once, right after the catch-up's first log read (partition 0) returns. */
function afterFirstRead(log: MessageLog, meanwhile: () => Promise<void>): void {
  const read = log.read.bind(log);
  let done = false;
  log.read = async (p: number, after: Position, limit: number): Promise<LogEntry[]> => {
    const page = await read(p, after, limit);
    if (!done) {
      done = true;
      await meanwhile();
    }
    return page;
  };
}

describe("catching up after a broker drop (memory broker)", () => {
  const { start, open } = relayFixture();

  async function setUp(env: Record<string, string> = {}) {
    const r = await start({ FANOUT_LOG_PARTITIONS: "4", ...env });
    const channel = channelInFirstPartition();
    const c = await open(`channel=${channel}`);
    await c.waitReady();
    const { hub, log, broker } = r.relay.context;
    const publish = async (from: number, to: number) => {
      for (let i = from; i < to; i++) await broker.publish([{ channel, data: JSON.stringify(i) }]);
    };
    return { c, hub, log, publish };
  }

  it("loses no log message when live traffic overflows the catch-up backlog", async () => {
    const { c, hub, log, publish } = await setUp({ FANOUT_CATCHUP_BACKLOG: "5" });
    // The broker link drops and comes back; while the catch-up reads partition 0, 20 messages
    // are published live: 5 fit the backlog, 15 arrive after partition 0 was read.
    hub.down();
    afterFirstRead(log, () => publish(0, 20));
    hub.recovered();
    await c.waitMessages(20);
    await new Promise((x) => setTimeout(x, 100));
    expect(c.envelopes().map((e) => e.data)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it("loses nothing when the link drops again while a catch-up is running", async () => {
    const { c, hub, log, publish } = await setUp();
    hub.down();
    // Partition 0 is read; the link drops again, 10 messages are published that this relay
    // never receives live, and the link comes back before the catch-up ends.
    afterFirstRead(log, async () => {
      hub.down();
      const deliver = hub.deliver;
      hub.deliver = () => undefined;
      await publish(0, 10);
      hub.deliver = deliver;
      hub.recovered();
    });
    hub.recovered();
    await c.waitMessages(10);
    await publish(10, 11);
    await c.waitMessages(11);
    expect(c.envelopes().map((e) => e.data)).toEqual(Array.from({ length: 11 }, (_, i) => i));
  });
});
