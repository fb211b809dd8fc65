/**
 * Key layout of tag indexes: one Redis set per tag, holding the cache keys tagged with it.
 * Applications store entries through `CACHE_ENTRY_SCRIPT` (or the edge helper
 * `storeCacheEntry` in functions/) so that `POST /v1/invalidate {"tags": [...]}` finds them.
 */
export const DEFAULT_TAG_PREFIX = "fanout";

export function tagSetKey(tag: string, prefix = DEFAULT_TAG_PREFIX): string {
  return `${prefix}:tag:${tag}`;
}

export interface CacheEntryOptions {
  tags?: readonly string[];
  /** Expiry of the entry in seconds (none: the entry and its tag sets persist). */
  ttlSeconds?: number;
  /** Must match the serving side's `FANOUT_LOG_PREFIX`. */
  prefix?: string;
}

/**
 * Stores one cache entry and indexes it under its tags, atomically. A tag set's expiry is
 * only ever extended (a set holding an entry without expiry never expires), so the index
 * outlives every entry in it and does not grow forever when entries simply expire.
 *
 * KEYS: the entry, then one set per tag. ARGV: value, ttl seconds ("0" = none).
 */
export const CACHE_ENTRY_SCRIPT = `
local ttl = tonumber(ARGV[2])
if ttl > 0 then redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl) else redis.call('SET', KEYS[1], ARGV[1]) end
for i = 2, #KEYS do
  local cur = redis.call('TTL', KEYS[i])
  redis.call('SADD', KEYS[i], KEYS[1])
  if ttl == 0 then
    redis.call('PERSIST', KEYS[i])
  elseif cur == -2 or (cur >= 0 and cur < ttl) then
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
return #KEYS - 1
`;

/** Arguments for CACHE_ENTRY_SCRIPT (ioredis: `redis.eval(CACHE_ENTRY_SCRIPT, keys.length, ...keys, ...args)`). */
export function cacheEntryScriptArgs(key: string, value: string, opts: CacheEntryOptions = {}): { keys: string[]; args: string[] } {
  const prefix = opts.prefix ?? DEFAULT_TAG_PREFIX;
  const ttl = opts.ttlSeconds ?? 0;
  if (!Number.isInteger(ttl) || ttl < 0) throw new RangeError("ttlSeconds must be a whole number ≥ 0");
  const tags = [...new Set(opts.tags ?? [])];
  return { keys: [key, ...tags.map((t) => tagSetKey(t, prefix))], args: [value, String(ttl)] };
}
