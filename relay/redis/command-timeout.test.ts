import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { keySlot } from "../../protocol/cluster-tags.js";
import { FanoutError } from "../../protocol/errors.js";
import { partitionOf, streamKey } from "../../protocol/partition.js";
import type { PublishResult } from "../../protocol/publish-request.js";
import { RedisCluster } from "../../test/support/redis-cluster.js";
import { sleep, until } from "../../test/support/until.js";
import { RedisBroker } from "./redis-broker.js";

/**
 * `FANOUT_REDIS_COMMAND_TIMEOUT_MS`: a master that holds its connections but has stopped
 * answering (SIGSTOP) costs a publish a 503 within the timeout instead of a hang until it
 * resumes; the publish it may have logged meanwhile is found by a retry with the same id.
 */

const PARTITIONS = 8;
const quiet = { deliver: () => undefined, down: () => undefined, recovered: () => undefined, fault: () => undefined };

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start(3);
}, 30_000);
afterAll(async () => {
  await cluster?.dispose();
});

/** The port of the master owning `slot`. */
async function ownerPort(slot: number): Promise<number> {
  const r = new Redis(cluster.ports[0], "127.0.0.1");
  try {
    const ranges = (await r.cluster("SLOTS")) as unknown as Array<[number, number, [string, number]]>;
    return ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
  } finally {
    r.disconnect();
  }
}

describe("a silent master (SIGSTOP)", () => {
  it("answers a publish 503 within the command timeout; a retry with the same id after it resumes finds the one logged message", async () => {
    const prefix = "ct1";
    const b = new RedisBroker(cluster.url, { prefix, partitions: PARTITIONS, maxLen: 1000, ttlMs: 0, dedupeSeconds: 60 }, undefined, "classic", undefined, 300);
    try {
      await b.start(quiet);
      const channel = "t:x";
      const p = partitionOf(channel, PARTITIONS);
      await b.publish([{ channel, data: "0" }]);
      const port = await ownerPort(keySlot(`${prefix}:${p}`));
      // A second channel on another partition of the same master: the turn makes a node call.
      let other = "t:0";
      for (let k = 1; partitionOf(other, PARTITIONS) === p || (await ownerPort(keySlot(`${prefix}:${partitionOf(other, PARTITIONS)}`))) !== port; k++) other = `t:${k}`;

      cluster.pause(port, true);
      let outcomes: Array<PublishResult[] | unknown>;
      try {
        // Settles on its own (the guard is only there to fail the test instead of hanging it).
        const guard = sleep(10_000).then(() => "still waiting");
        outcomes = await Promise.race([
          Promise.all([b.publish([{ channel, data: "1", id: "t-1" }]), b.publish([{ channel: other, data: "1" }])].map((x) => x.catch((err: unknown) => err))),
          guard,
        ]).then((x) => (x === "still waiting" ? [x, x] : (x as unknown[])));
      } finally {
        cluster.pause(port, false);
      }
      for (const o of outcomes) {
        expect(o).toBeInstanceOf(FanoutError);
        expect((o as FanoutError).status).toBe(503);
        expect((o as FanoutError).code).toBe("broker_unavailable");
        expect((o as FanoutError).message).toMatch(/did not answer within 300 ms.*same id/);
      }

      // Resumed: the retry gets the message the stalled call logged, or logs it now; once either way.
      let retry: PublishResult[] | undefined;
      await until(
        async () => {
          retry = await b.publish([{ channel, data: "1", id: "t-1" }]).catch(() => undefined);
          return retry !== undefined;
        },
        10_000,
        "a publish after the master resumed",
      );
      const r = new Redis(port, "127.0.0.1");
      try {
        const rows = (await r.xrange(streamKey(prefix, p), "-", "+")).filter(([, f]) => f[1] === channel);
        expect(rows.map(([, f]) => f[3])).toEqual(["0", "1"]);
        expect(retry![0].id).toBe(`${p}-${rows[1][0]}`);
      } finally {
        r.disconnect();
      }
    } finally {
      await b.close();
    }
  }, 40_000);
});
