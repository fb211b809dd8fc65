import { afterEach, expect } from "vitest";
import { SseClient, ssePool } from "./sse-client.js";
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

/**
 * Relays started with `defaults` under each call's `env`, and streams opened on any of them
 * that have seen `ready` (optionally resuming from `lastEventId`); streams closed, then relays
 * stopped, after each test. For files that run several relays on one Redis topology.
 */
export function relayPool(defaults: () => Record<string, string>): {
  start(env?: Record<string, string>): Promise<RunningRelay>;
  open(r: RunningRelay, qs: string, lastEventId?: string): Promise<SseClient>;
} {
  const relays: RunningRelay[] = [];
  const clients: SseClient[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    for (const r of relays.splice(0)) await r.stop();
  });
  return {
    async start(env = {}) {
      const r = await startRelay({ ...defaults(), ...env });
      relays.push(r);
      return r;
    },
    async open(r, qs, lastEventId) {
      const c = await SseClient.open(`${r.base}/v1/events?${qs}`, lastEventId ? { "Last-Event-ID": lastEventId } : {});
      clients.push(c);
      expect(c.status, c.body).toBe(200);
      await c.waitReady();
      return c;
    },
  };
}
