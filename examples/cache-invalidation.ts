/**
 * An app instance keeps a local cache and drops entries when an invalidation is broadcast
 * on `invalidate:default` (by `POST /v1/invalidate`, a deployment hook, or an edge function).
 * If the relay cannot resume its stream (`reset`), some broadcasts may have been missed, so
 * the app drops the whole cache: stale data is worse than a cold cache.
 *
 * Run against a local relay (`npm start` in another terminal):
 *
 *     npx tsx examples/cache-invalidation.ts [relay-url]   # default http://localhost:8080 (or $FANOUT_URL)
 *
 * It fills the cache, sends `POST /v1/invalidate {"keys":["product:1"],"tags":["catalog"]}`
 * and prints what was dropped. From another terminal you can send your own:
 *
 *     curl -X POST http://localhost:8080/v1/invalidate -H 'Content-Type: application/json' \
 *       -d '{"keys":["product:2"]}'
 *
 * With FANOUT_PUBLISH_KEYS set on the relay, pass one as $FANOUT_PUBLISH_KEY.
 */
import { pathToFileURL } from "node:url";
import { FanoutClient, FanoutClientError, publish } from "../client/index.js";
import { endpoint, postJson } from "../client/publish.js";

export interface CacheInvalidationOptions {
  baseUrl?: string;
  key?: string;
  scope?: string;
  log?: (line: string) => void;
}

/** What an invalidation broadcast carries (`data` of type `invalidate`). */
interface Invalidation {
  scope: string;
  keys: string[];
  tags: string[];
  paths: string[];
  source: string;
  deployId?: string;
}

/** A local cache with a tag index, as an app instance would keep next to its database. */
class LocalCache {
  private readonly entries = new Map<string, { value: unknown; tags: string[]; path?: string }>();

  set(key: string, value: unknown, tags: string[] = [], path?: string): void {
    this.entries.set(key, { value, tags, path });
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** Drops the listed keys, every key carrying one of the tags, and every key cached for one of the paths. */
  invalidate(inv: Pick<Invalidation, "keys" | "tags" | "paths">): string[] {
    const dropped: string[] = [];
    for (const [k, e] of this.entries) {
      if (inv.keys.includes(k) || e.tags.some((t) => inv.tags.includes(t)) || (e.path !== undefined && inv.paths.includes(e.path))) {
        this.entries.delete(k);
        dropped.push(k);
      }
    }
    return dropped;
  }

  clear(): void {
    this.entries.clear();
  }
}

export async function main(opts: CacheInvalidationOptions = {}) {
  const baseUrl = opts.baseUrl ?? "http://localhost:8080";
  const log = opts.log ?? console.log;
  const scope = opts.scope ?? "default";
  const cache = new LocalCache();
  cache.set("product:1", { name: "Lamp" }, ["catalog"], "/products/1");
  cache.set("product:2", { name: "Desk" }, ["catalog"], "/products/2");
  cache.set("user:9", { name: "Ann" }, ["users"]);
  cache.set("page:/about", "<html>…</html>", [], "/about");

  const client = new FanoutClient({ url: baseUrl, channels: [`invalidate:${scope}`] });
  const broadcasts: Invalidation[] = [];
  client.on<Invalidation>("invalidate", (e) => {
    broadcasts.push(e.data);
    const dropped = cache.invalidate(e.data);
    log(`invalidate from ${e.data.source}: keys=${JSON.stringify(e.data.keys)} tags=${JSON.stringify(e.data.tags)} paths=${JSON.stringify(e.data.paths)} → dropped ${JSON.stringify(dropped)}`);
  });
  client.onReset((reason) => {
    cache.clear();
    log(`stream could not resume (${reason}): dropped the whole cache`);
  });
  client.onError((err) => log(`subscriber: ${err.code} ${err.message}`));
  await new Promise<void>((resolve) => client.onReady(() => resolve()));
  log(`cached: ${JSON.stringify(cache.keys())}`);

  const request = { scope, keys: ["product:1"], tags: ["catalog"], paths: ["/about"] };
  const via = await invalidate(baseUrl, request, opts.key);
  log(`POST /v1/invalidate → ${JSON.stringify(via.result)}${via.route === "publish" ? " (relay has no /v1/invalidate: broadcast through /v1/publish instead)" : ""}`);

  const deadline = Date.now() + 3000;
  while (broadcasts.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  client.close();
  log(`still cached: ${JSON.stringify(cache.keys())}`);
  return { remaining: cache.keys(), broadcasts, route: via.route };
}

/**
 * `POST /v1/invalidate`. A relay without that route (404) gets the same broadcast through
 * `/v1/publish`; that reaches every subscriber but deletes no server-side cache keys.
 */
async function invalidate(baseUrl: string, body: { scope: string; keys: string[]; tags: string[]; paths: string[] }, key?: string) {
  try {
    const result = await postJson<{ id: string; receivers: number; deleted: number }>(endpoint(baseUrl, "v1/invalidate"), body, { key });
    return { route: "invalidate" as const, result };
  } catch (err) {
    if (!(err instanceof FanoutClientError) || err.status !== 404) throw err;
    const result = await publish(baseUrl, { channel: `invalidate:${body.scope}`, type: "invalidate", data: { ...body, source: "api" } }, { key });
    return { route: "publish" as const, result };
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main({ baseUrl: process.argv[2] ?? process.env.FANOUT_URL, key: process.env.FANOUT_PUBLISH_KEY });
}
