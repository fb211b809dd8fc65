/**
 * Names used by sharded Pub/Sub on Redis Cluster (`FANOUT_CLUSTER_PUBSUB=sharded`). Each
 * carries its partition's hash tag, so it lives in the partition's slot: the publish script
 * can SPUBLISH it beside the partition's XADD, and a relay subscribes it on the partition's
 * master. Shard channels are their own namespace (plain SUBSCRIBE never sees them), so these
 * names cannot collide with a client's channel.
 */

/** Where a channel's log messages are SPUBLISHed: `{<tag>}:c:<channel>`. */
export function shardChannelPrefix(tag: string): string {
  return `{${tag}}:c:`;
}

/** Every log message of the partition, while some relay holds a pattern: `{<tag>}:all`. */
export function firehoseChannel(tag: string): string {
  return `{${tag}}:all`;
}

/** A relay's settle markers for the partition (see relay/redis/cluster-shard-links.ts). */
export function shardMarkerChannel(tag: string, relayId: string): string {
  return `{${tag}}:m:${relayId}`;
}

/** Present (with a TTL kept up by relays holding patterns) while the firehose is wanted. */
export function patternFlagKey(tag: string): string {
  return `{${tag}}:patterns`;
}
