import { describe, expect, it } from "vitest";
import { partitionOf, streamKey } from "../../protocol/partition.js";
import { relayFixture } from "../../test/support/relay-harness.js";
import { channelOnShard, redisShardsFixture } from "../../test/support/redis-shards.js";
import { publish, type SseClient } from "../../test/support/sse-client.js";
import { copy, fence, movingKey, planMoves, release } from "../../tools/move-partitions.js";

const PARTITIONS = 8;

/** Per channel, the `data` values the clients received, in arrival order, the first client's first. */
function byChannel(...clients: SseClient[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const c of clients) for (const e of c.envelopes()) (out[e.channel] ??= []).push(e.data);
  return out;
}

describe("adding a shard by the documented procedure (fence, copy, roll out, release)", () => {
  const shards = redisShardsFixture(2);
  const { start, openUrl } = relayFixture();

  it("moves the partitions Jump hashing gives the new shard with their history: connected clients lose nothing and get nothing twice", async () => {
    const prefix = `move${Date.now().toString(36)}`;
    const env = { FANOUT_LOG_PARTITIONS: String(PARTITIONS), FANOUT_LOG_PREFIX: prefix };
    const [a, b] = shards.servers;
    const [ra, rb] = shards.clients;
    const moves = planMoves(PARTITIONS, 1, 2);
    // Jump: appending shard 1 moves partitions to it and nowhere else.
    expect(moves.map((m) => [m.partition, m.from, m.to])).toEqual([
      [0, 0, 1],
      [3, 0, 1],
      [7, 0, 1],
    ]);
    const x = channelOnShard("m:x", 1, PARTITIONS, 2); // in a partition that moves
    const y = channelOnShard("m:y", 0, PARTITIONS, 2); // in one that stays
    const qs = `channel=${encodeURIComponent(x)}&channel=${encodeURIComponent(y)}`;

    const old = await start({ ...env, REDIS_URL: a.url });
    const first = await openUrl(`${old.base}/v1/events?${qs}`);
    await first.waitReady();
    for (const [ch, d] of [[x, "x1"], [y, "y1"]]) expect((await publish(old.base, { channel: ch, data: d })).status).toBe(200);
    await first.waitMessages(2);
    first.close();
    for (const [ch, d] of [[x, "x2"], [y, "y2"]]) expect((await publish(old.base, { channel: ch, data: d })).status).toBe(200);
    // A client connected to an old relay through the whole change.
    const during = await openUrl(`${old.base}/v1/events?${qs}`, { "Last-Event-ID": first.lastEventId! });
    await during.waitMessages(2);

    for (const m of moves) await fence(ra, prefix, m.partition);
    const fenced = await publish(old.base, { channel: x, data: "x3", id: "x3" });
    expect(fenced.status).toBe(503);
    expect((await publish(old.base, { channel: y, data: "y3" })).status).toBe(200);
    for (const m of moves) await copy(ra, rb, prefix, m.partition);

    // The new list: the publisher's retry lands on the new shard; the old relay keeps its
    // stream for the partitions that stayed.
    const next = await start({ ...env, REDIS_URL: `${a.url} ${b.url}` });
    const retried = await publish(next.base, { channel: x, data: "x3", id: "x3" });
    expect(retried.status).toBe(200);
    expect((await publish(next.base, { channel: y, data: "y4" })).status).toBe(200);
    await during.waitMessages(4);

    // The old relay drains; its client resumes on the new one, which replays x3 from the copy.
    await old.stop();
    await during.waitClosed();
    const after = await openUrl(`${next.base}/v1/events?${qs}`, { "Last-Event-ID": during.lastEventId! });
    await after.waitMessages(1);
    expect((await publish(next.base, { channel: x, data: "x4" })).status).toBe(200);
    await after.waitMessages(2);
    await new Promise((r) => setTimeout(r, 100));
    expect(after.events.some((e) => e.event === "reset")).toBe(false);
    expect(byChannel(during, after)).toEqual({ [y]: ["y2", "y3", "y4"], [x]: ["x2", "x3", "x4"] });
    // x's whole history is on the new shard under its old ids.
    const onNew = await rb.xrange(streamKey(prefix, partitionOf(x, PARTITIONS)), "-", "+");
    expect(onNew.map(([, f]) => f[f.indexOf("d") + 1])).toEqual(['"x1"', '"x2"', '"x3"', '"x4"']);

    for (const m of moves) await release(ra, prefix, m.partition);
    for (const m of moves) expect(await ra.exists(streamKey(prefix, m.partition), movingKey(prefix, m.partition))).toBe(0);
  });
});
