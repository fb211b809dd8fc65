import { ConfigError, loadConfig } from "./config.js";
import { createRelay } from "./relay.js";

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`[fanout] configuration error: ${err.message}`);
    process.exit(2);
  }
  throw err;
}

const relay = await createRelay(config);

// Before the relay listens (and says so): a SIGTERM that follows the "listening" line at once
// (an orchestrator, a test) must find the drain handler, not Node's default, which exits on it.
let stopping = false;
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, () => {
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`[fanout] ${sig}: draining (grace ${config.drainGraceMs} ms)`);
    relay.drain().then(
      () => process.exit(0),
      (err) => {
        console.error("[fanout] drain failed:", err);
        process.exit(1);
      },
    );
  });
}

const port = await relay.listen();
const brokerName = config.redisShards
  ? `Redis broker, ${config.redisShards.length} shards`
  : config.redisUrl
    ? `Redis broker${config.clusterPubsub === "sharded" ? ", Cluster with sharded Pub/Sub" : ""}`
    : "embedded broker";
console.log(`[fanout] relay listening on http://localhost:${port} (${brokerName}; relay id ${relay.fleet.id})`);
