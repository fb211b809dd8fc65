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
