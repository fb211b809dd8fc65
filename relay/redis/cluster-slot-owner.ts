import type { Cluster, Redis } from "ioredis";

const ASK_TIMEOUT_MS = 1000;

/**
 * The master owning `slot`, as `host:port`, from CLUSTER SLOTS asked of the Cluster client's
 * nodes in turn (connected ones first; the others connect on use, and a dead or silent one
 * costs at most a second). Asked afresh on every call: ioredis's own slot map is refreshed
 * only on MOVED or a lost connection.
 */
export async function clusterSlotOwner(cmd: Cluster, slot: number): Promise<string> {
  const ask = async (r: Redis): Promise<string | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const ranges = (await Promise.race([
      r.cluster("SLOTS"),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("CLUSTER SLOTS timed out")), ASK_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer))) as Array<[number, number, [string, number]]>;
    const hit = ranges.find(([from, to]) => slot >= from && slot <= to);
    return hit ? `${hit[2][0] || "127.0.0.1"}:${hit[2][1]}` : undefined;
  };
  let lastErr: unknown = new Error(`no node knows slot ${slot}`);
  const nodes = cmd.nodes("all").sort((a, b) => Number(b.status === "ready") - Number(a.status === "ready"));
  for (const n of nodes) {
    try {
      const owner = await ask(n);
      if (owner) return owner;
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr;
}
