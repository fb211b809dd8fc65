import { randomBytes } from "node:crypto";
import type { Cluster } from "ioredis";
import { parseStreamId, type Position, ZERO } from "../../protocol/position.js";

/**
 * Reads the partition's last log entry and SPUBLISHes it to the relay's marker shard channel
 * of the partition, in one step: `<token> <id>`. A shard channel's messages reach a
 * connection in the order its master ran them, so when the marker arrives every message of
 * the partition logged up to that entry has arrived before it — and its arrival proves the
 * connection is subscribed on the slot's current owner.
 */
const SHARD_SETTLE_SCRIPT = `
local r = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local out = ARGV[2] .. ' ' .. (#r > 0 and r[1][1] or '0-0')
redis.call('SPUBLISH', ARGV[1], out)
return out
`;
export const SETTLE_TIMEOUT_MS = 2000;

type WithSettle = Cluster & { fanoutShardSettle(key: string, marker: string, token: string): Promise<unknown> };

/** Settle-marker round trips of sharded Pub/Sub, one partition at a time (cluster-shard-links.ts). */
export class ShardSettles {
  private readonly waiters = new Map<string, { p: number; resolve: (end: Position) => void }>();
  private readonly cmd: WithSettle;

  constructor(
    cmd: Cluster,
    /** A marker of partition `p` arrived: every log message up to `end` has arrived before it. */
    private readonly onEnd: (p: number, end: Position) => void,
  ) {
    cmd.defineCommand("fanoutShardSettle", { lua: SHARD_SETTLE_SCRIPT, numberOfKeys: 1 });
    this.cmd = cmd as WithSettle;
  }

  /** Sends a marker through partition `p`'s slot; resolves with the log's end when it comes back, rejects after SETTLE_TIMEOUT_MS. */
  async settle(p: number, streamKey: string, marker: string): Promise<Position> {
    // Unguessable: anyone able to SPUBLISH could otherwise answer a settle with a made-up end.
    const token = randomBytes(12).toString("base64url");
    const arrived = new Promise<Position>((resolve, reject) => {
      this.waiters.set(token, { p, resolve });
      setTimeout(() => {
        if (this.waiters.delete(token)) reject(new Error(`settle marker of partition ${p} did not arrive`));
      }, SETTLE_TIMEOUT_MS).unref();
    });
    // The script's call may hang (a master that stopped answering): the marker's timeout bounds both.
    const sent = this.cmd.fanoutShardSettle(streamKey, marker, token);
    sent.catch(() => this.waiters.delete(token));
    await Promise.race([sent.then(() => arrived), arrived]);
    return arrived;
  }

  /** A message on partition `p`'s marker channel. */
  onMarker(p: number, payload: string): void {
    const [token, id] = payload.split(" ");
    const waiter = this.waiters.get(token);
    // Not one of ours (the tokens are random), or another partition's: ignore it.
    if (!waiter || waiter.p !== p) return;
    this.waiters.delete(token);
    const end = parseStreamId(id ?? "") ?? ZERO;
    this.onEnd(p, end);
    waiter.resolve(end);
  }
}
