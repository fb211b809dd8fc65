import { afterEach } from "vitest";
import { ssePool } from "./sse-client.js";
import { loadConfig } from "../../relay/config.js";
import { createRelay, type Relay } from "../../relay/relay.js";

export interface RunningRelay {
  relay: Relay;
  base: string;
  port: number;
  stop(): Promise<void>;
}

/** A relay in this process on a free port, configured like `npm start` plus `env`. */
export async function startRelay(env: Record<string, string | undefined> = {}): Promise<RunningRelay> {
  const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", FANOUT_UNSUBSCRIBE_DELAY_MS: "50", ...env });
  const relay = await createRelay(config);
  const port = await relay.listen();
  return { relay, port, base: `http://127.0.0.1:${port}`, stop: () => relay.drain(200) };
}

export type BrokerMode = { name: "memory" | "redis"; env: () => Record<string, string> };

/**
 * Relays a test starts and the SSE clients it opens on the latest one, all closed after
 * each test: `const { start, open } = relayFixture()`, then `r = await start(env)` and
 * `await open("channel=a")` inside the tests (`openUrl(url)` for any other relay or stream).
 */
export function relayFixture(): {
  start(env?: Record<string, string | undefined>): Promise<RunningRelay>;
  open: ReturnType<typeof ssePool>["open"];
  openUrl: ReturnType<typeof ssePool>["openUrl"];
} {
  const started: RunningRelay[] = [];
  const pool = ssePool(() => started[started.length - 1].base);
  afterEach(async () => {
    pool.closeAll();
    for (const r of started.splice(0)) await r.stop();
  });
  return {
    async start(env = {}) {
      const r = await startRelay(env);
      started.push(r);
      return r;
    },
    open: pool.open,
    openUrl: pool.openUrl,
  };
}
