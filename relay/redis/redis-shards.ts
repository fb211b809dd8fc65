/**
 * `REDIS_URL` as a list of independent Redis servers: entries separated by whitespace, each
 * one `redis://`, `rediss://` or `redis+sentinel://` (a shard is a standalone server or a
 * Sentinel-managed master). Whitespace cannot occur inside any single form, and the Cluster
 * seed list (`host:port,host:port`) uses commas, so one entry and several never read alike.
 * The order is the shard number: shard 0 first.
 */
export function redisShardUrls(redisUrl: string): string[] {
  return redisUrl.trim().split(/\s+/).filter(Boolean);
}

/** Why a shard entry is not accepted, or undefined. */
export function shardUrlProblem(entry: string): string | undefined {
  if (/^(rediss?:\/\/|redis\+sentinel:\/\/)/.test(entry)) return undefined;
  return `each shard must be redis://, rediss:// or redis+sentinel:// (a Cluster cannot be a shard), got ${JSON.stringify(entry)}`;
}
