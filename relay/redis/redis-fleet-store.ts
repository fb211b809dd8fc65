import type { BackendMemory, FleetStore } from "../ops/fleet-store.js";
import type { RelayReport } from "../ops/relay-report.js";
import type { RedisClient } from "./redis-connection.js";

/**
 * Relays' heartbeat reports in Redis: a hash per relay, `{<prefix>:fleet}:relay:<id>`
 * (fields `report`, the JSON, and `state`) with a PEXPIRE, and a set of ids
 * `{<prefix>:fleet}:relays` to list them. The hash tag puts them all in one slot, so on a
 * Cluster a heartbeat is one MULTI on one node and a listing one pipeline. The set is only an
 * index: a listed id whose hash has expired (a relay killed without a word) is dropped from
 * it by whoever lists it. Runs on the broker's command connection, so a write fails fast
 * while Redis is down.
 */
export class RedisFleetStore implements FleetStore {
  private readonly index: string;
  private readonly keyPrefix: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    /** Whose memory to report: every shard of a sharded log (the fullest is reported); default `redis`. */
    private readonly memorySources: readonly RedisClient[] = [redis],
  ) {
    this.index = `{${prefix}:fleet}:relays`;
    this.keyPrefix = `{${prefix}:fleet}:relay:`;
  }

  async put(report: RelayReport, ttlMs: number): Promise<void> {
    const key = this.keyPrefix + report.id;
    const res = await this.redis.multi().hset(key, "report", JSON.stringify(report), "state", report.state).pexpire(key, ttlMs).sadd(this.index, report.id).exec();
    const failed = res?.find(([err]) => err);
    if (!res || failed) throw failed?.[0] ?? new Error("fleet heartbeat aborted");
  }

  async list(): Promise<RelayReport[]> {
    const ids = await this.redis.smembers(this.index);
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hget(this.keyPrefix + id, "report");
    const rows = (await pipe.exec()) ?? [];
    const out: RelayReport[] = [];
    const gone: string[] = [];
    rows.forEach(([err, raw], i) => {
      if (err) return;
      if (typeof raw !== "string") gone.push(ids[i]);
      else {
        try {
          out.push(JSON.parse(raw) as RelayReport);
        } catch {
          gone.push(ids[i]);
        }
      }
    });
    // A relay that came back between the read and this SREM re-adds itself at its next beat.
    if (gone.length) await this.redis.srem(this.index, ...gone).catch(() => undefined);
    return out;
  }

  /** The fullest source's memory: the highest share of its maxmemory, else the most bytes used. */
  async backendMemory(): Promise<BackendMemory | undefined> {
    const all = await Promise.all(this.memorySources.map((r) => this.memoryOf(r)));
    const share = (m: BackendMemory) => (m.maxMemoryBytes > 0 ? m.usedMemoryBytes / m.maxMemoryBytes : 0);
    let best: BackendMemory | undefined;
    for (const m of all) {
      if (m && (!best || share(m) > share(best) || (share(m) === share(best) && m.usedMemoryBytes > best.usedMemoryBytes))) best = m;
    }
    return best;
  }

  private async memoryOf(redis: RedisClient): Promise<BackendMemory | undefined> {
    try {
      // On a Cluster this asks one node (the one ioredis picks): a sample, not the sum.
      const info = await redis.info("memory");
      const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, "m").exec(info)?.[1] ?? NaN);
      const used = field("used_memory");
      if (!Number.isFinite(used)) return undefined;
      const max = field("maxmemory");
      return { usedMemoryBytes: used, maxMemoryBytes: Number.isFinite(max) ? max : 0 };
    } catch {
      return undefined;
    }
  }
}
