import { createHash } from "node:crypto";
import { notReplicated } from "../../protocol/errors.js";
import { PUBLISH_SCRIPT } from "../../protocol/publish-script.js";
import type { RedisClient } from "./redis-connection.js";

/** `FANOUT_PUBLISH_REPLICAS` and `FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS`. */
export interface PublishReplicas {
  /** Replicas that must confirm a publish before it is answered 200; 0: no WAIT. */
  count: number;
  timeoutMs: number;
}

export const NO_REPLICAS: PublishReplicas = { count: 0, timeoutMs: 1000 };

const SHA = createHash("sha1").update(PUBLISH_SCRIPT).digest("hex");

type Pipeline = ReturnType<RedisClient["pipeline"]>;

/**
 * Runs the publish script and then `WAIT <count> <timeoutMs>` in one pipeline, so both go over
 * the same connection to the same server: WAIT counts the replicas that have acknowledged
 * this connection's writes up to the script. On Cluster the pipeline is routed by the
 * script's keys (WAIT has none), so it runs on the node that owns the partition's slot, the
 * one that ran the script. With independent shards each shard's part runs here on its own
 * shard's connection.
 *
 * The script goes as EVALSHA, and as EVAL only when the server does not know it: ioredis's
 * own NOSCRIPT fallback would resend the script outside the pipeline, after the WAIT, which
 * would then not cover it.
 *
 * A script error (a MOVED mid-migration, a READONLY mid-failover) is thrown as is: nothing
 * was written on that server and the caller answers 503. Fewer acknowledgements than asked
 * throws `not_replicated`: the message IS in this server's log and was published live, but a
 * failover now could lose it, so the publisher retries with its idempotency id (and gets the
 * first result back, `duplicate: true`, if it survived).
 */
export async function publishReplicated(cmd: RedisClient, keys: string[], args: string[], replicas: PublishReplicas): Promise<unknown> {
  let [script, acked] = await run(cmd.pipeline().evalsha(SHA, keys.length, ...keys, ...args), replicas);
  if (script[0] && /NOSCRIPT/.test(script[0].message)) {
    [script, acked] = await run(cmd.pipeline().eval(PUBLISH_SCRIPT, keys.length, ...keys, ...args), replicas);
  }
  if (script[0]) throw script[0];
  if (acked[0]) throw acked[0];
  const n = Number(acked[1]);
  if (!(n >= replicas.count)) {
    throw notReplicated(`published, but ${n} of ${replicas.count} replicas confirmed it within ${replicas.timeoutMs} ms; retry with the same id`);
  }
  return script[1];
}

async function run(p: Pipeline, replicas: PublishReplicas): Promise<[Error | null, unknown][]> {
  const out = await p.wait(replicas.count, replicas.timeoutMs).exec();
  if (!out || out.length !== 2) throw new Error("the publish pipeline was aborted");
  return out;
}
