import type { Redis } from "@upstash/redis/cloudflare";
import { CACHE_ENTRY_SCRIPT, cacheEntryScriptArgs, type CacheEntryOptions } from "../routes/cache-tags.js";

/**
 * For applications on Workers: stores a cache entry and indexes it under its tags in one
 * atomic call, so `POST /v1/invalidate {"tags": [...]}` deletes it.
 *
 *     await storeCacheEntry(redis, "page:/pricing", html, { tags: ["pricing"], ttlSeconds: 600 });
 */
export async function storeCacheEntry(redis: Redis, key: string, value: string, opts: CacheEntryOptions = {}): Promise<void> {
  const { keys, args } = cacheEntryScriptArgs(key, value, opts);
  await redis.eval(CACHE_ENTRY_SCRIPT, keys, args);
}
