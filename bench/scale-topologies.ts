/**
 * The Redis topologies `npm run bench -- scale` compares. One entry each: a name, how to start
 * its servers (and the ports whose CPU is measured), and the environment the relays and the
 * publishers get. An entry the relay cannot run yet says why (`unavailable`), and the bench
 * prints it as "n/a".
 */
import { ConfigError, loadConfig } from "../relay/config.js";
import { RedisCluster } from "../test/support/redis-cluster.js";
import { RedisServer } from "../test/support/redis-server.js";

export interface RunningTopology {
  /** Every redis-server of the topology: its CPU is read from each with INFO CPU. */
  ports: number[];
  /** REDIS_URL and whatever else the topology needs, for relays and publishers alike. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export interface Topology {
  name: string;
  /** Held to the scale goal (at most 1.2× one Redis's total CPU per message, busiest server at most 0.45×). */
  goal?: boolean;
  /** Why this topology cannot run with this checkout, or undefined when it can. */
  unavailable?: () => string | undefined;
  start(): Promise<RunningTopology>;
}

async function standalone(n: number): Promise<RunningTopology> {
  const servers: RedisServer[] = [];
  try {
    for (let i = 0; i < n; i++) servers.push(await RedisServer.start(["--maxclients", "10000"]));
  } catch (e) {
    for (const s of servers) await s.dispose();
    throw e;
  }
  return {
    ports: servers.map((s) => s.port),
    env: { REDIS_URL: servers.map((s) => s.url).join(" ") },
    stop: async () => {
      for (const s of servers) await s.dispose();
    },
  };
}

async function cluster(env: Record<string, string>, masters = 3): Promise<RunningTopology> {
  const c = await RedisCluster.start(masters);
  // The relay reads a seed list (two entries or more) as Cluster: one node is listed twice.
  const url = masters === 1 ? `${c.url},${c.url}` : c.url;
  return { ports: c.ports, env: { REDIS_URL: url, ...env }, stop: () => c.dispose() };
}

/**
 * Whether this relay knows `FANOUT_CLUSTER_PUBSUB` (Cluster sharded pub/sub): it refuses a
 * made-up value for a variable it reads, and ignores variables it does not know.
 */
function clusterPubsubUnavailable(): string | undefined {
  try {
    loadConfig({ REDIS_URL: "127.0.0.1:7000,127.0.0.1:7001", FANOUT_CLUSTER_PUBSUB: "not-a-mode" });
  } catch (e) {
    if (e instanceof ConfigError && /FANOUT_CLUSTER_PUBSUB/.test(e.message)) return undefined;
  }
  return "not built"; // this relay has no FANOUT_CLUSTER_PUBSUB=sharded
}

export const TOPOLOGIES: Topology[] = [
  { name: "one Redis", start: () => standalone(1) },
  { name: "3 independent shards", goal: true, start: () => standalone(3) },
  // What Cluster mode itself costs, on one server: the like-for-like base of the 3-master rows.
  { name: "Cluster, 1 master, sharded pub/sub", unavailable: clusterPubsubUnavailable, start: () => cluster({ FANOUT_CLUSTER_PUBSUB: "sharded" }, 1) },
  { name: "Cluster, 3 masters, classic pub/sub", start: () => cluster({}) },
  { name: "Cluster, 3 masters, sharded pub/sub", goal: true, unavailable: clusterPubsubUnavailable, start: () => cluster({ FANOUT_CLUSTER_PUBSUB: "sharded" }) },
];
