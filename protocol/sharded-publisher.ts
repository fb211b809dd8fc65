import { unavailable } from "./errors.js";
import { partitionOf } from "./partition.js";
import type { PublishMessage, PublishResult } from "./publish-request.js";
import type { Publisher } from "./publisher.js";
import { checkPublishable } from "./reserved-channels.js";
import type { ShardMap } from "./shard-map.js";

/**
 * A publish over a log sharded across independent Redis servers: each message goes to its
 * channel's partition's shard (shard-map.ts), the relay and the edge functions alike.
 *
 * A batch is validated as a whole before anything is written (all or nothing, as on one
 * Redis), and refused with 503 when one of its shards is known to be down. The part of a
 * batch on one shard is one script run, atomic there; parts on different shards are written
 * in parallel and are not atomic together: if one fails after another succeeded, the answer
 * is a 503 and the messages on the other shard are published. A publisher that retries with
 * idempotency ids gets those back as duplicates, so nothing is published twice.
 */
export class ShardedPublisher implements Publisher {
  constructor(
    private readonly map: ShardMap,
    private readonly shards: readonly Publisher[],
    private readonly prefix: string,
    /** Whether a shard can take a write now (the relay knows its connections' state). */
    private readonly isReady: (shard: number) => boolean = () => true,
  ) {
    if (shards.length !== map.shards) throw new Error(`${shards.length} publishers for ${map.shards} shards`);
  }

  async publish(messages: PublishMessage[]): Promise<PublishResult[]> {
    checkPublishable(messages, this.prefix);
    const groups = new Map<number, number[]>();
    messages.forEach((m, i) => {
      const s = this.map.shardOf[partitionOf(m.channel, this.map.partitions)];
      let g = groups.get(s);
      if (!g) groups.set(s, (g = []));
      g.push(i);
    });
    if (groups.size === 1) {
      const [s] = groups.keys();
      return this.shards[s].publish(messages);
    }
    for (const s of groups.keys()) if (!this.isReady(s)) throw unavailable(`Redis shard ${s} is unreachable`, 2);
    const out: PublishResult[] = new Array(messages.length);
    const runs = await Promise.allSettled(
      [...groups].map(async ([s, idx]) => {
        const res = await this.shards[s].publish(idx.map((i) => messages[i]));
        idx.forEach((i, k) => (out[i] = res[k]));
      }),
    );
    const failed = runs.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    return out;
  }
}
