/**
 * Publisher child process of `npm run bench -- scale` (bench/scale.ts): it builds the relay's
 * own broker from the topology's environment (so a publish runs exactly the script, the
 * routing and the connections a relay or the API would use) and publishes its share of the
 * messages through it, closed loop: `inFlight` batches awaited concurrently. No HTTP: the
 * bench measures Redis, and HTTP parsing would make this process the bottleneck.
 */
import { loadConfig } from "../relay/config.js";
import { createRelay } from "../relay/relay.js";

export type ToScalePub =
  | {
      type: "start";
      env: Record<string, string>;
      channels: string[];
      from: number;
      step: number;
      messages: number;
      batch: number;
      /** All messages of a batch on one channel (so on one shard), instead of round-robin over the channels. */
      oneChannel: boolean;
      inFlight: number;
    }
  | { type: "go" };
export type FromScalePub = { type: "ready" } | { type: "done"; published: number; failed: number; firstError?: string; elapsedMs: number; cpuUs: number } | { type: "error"; message: string };

const send = (m: FromScalePub): void => void process.send!(m);
let cfg: Extract<ToScalePub, { type: "start" }>;
let publish: (batch: { channel: string; data: string }[]) => Promise<unknown>;

process.on("message", (m: ToScalePub) => {
  if (m.type === "start") {
    cfg = m;
    (async () => {
      const relay = await createRelay(loadConfig({ PORT: "0", HOST: "127.0.0.1", ...m.env }));
      const broker = relay.context.broker;
      publish = (b) => broker.publish(b);
      // One publish per partition first: the shard/slot connections are open before the clock starts.
      await Promise.all(m.channels.map((channel) => publish([{ channel, data: "0" }])));
      send({ type: "ready" });
    })().catch((e: Error) => send({ type: "error", message: e.stack ?? e.message }));
  } else if (m.type === "go") void go();
});

async function go(): Promise<void> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // This worker's messages: from, from + step, … (below `messages`).
  let next = cfg.from;
  let batches = 0;
  let published = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async (): Promise<void> => {
    while (next < cfg.messages) {
      const batch: { channel: string; data: string }[] = [];
      const own = cfg.channels[(batches++ * cfg.step + cfg.from) % cfg.channels.length];
      for (; batch.length < cfg.batch && next < cfg.messages; next += cfg.step) batch.push({ channel: cfg.oneChannel ? own : cfg.channels[next % cfg.channels.length], data: String(next) });
      try {
        await publish(batch);
        published += batch.length;
      } catch (e) {
        failed += batch.length;
        firstError ??= (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: cfg.inFlight }, worker));
  const cpu = process.cpuUsage(cpu0);
  send({ type: "done", published, failed, firstError, elapsedMs: performance.now() - t0, cpuUs: cpu.user + cpu.system });
}
process.on("disconnect", () => process.exit(0));
