/**
 * `npx tsx bench/shard-scale.ts` — Redis CPU per published message with the log on one Redis
 * and on 3 independent shards (docs/protocol.md, Independent Redis shards), same load: two
 * relays, each with one SSE client on all channels, messages published through the relay's
 * broker (the publish script, as the API and the edge functions run it). On a shared 2-core
 * machine wall-clock throughput says little, so it reports what scales with the number of
 * servers: Redis CPU per message summed over all Redis processes, and the busiest one's.
 *
 * Flags: --messages <n> (default 20000), --batch <n> (default 1), --channels <n> (default 64),
 * --in-flight <n> (publishes awaited concurrently, default 8).
 */
import { Redis } from "ioredis";
import { loadConfig } from "../relay/config.js";
import { createRelay } from "../relay/relay.js";
import { RedisServer } from "../test/support/redis-server.js";
import { SseClient } from "../test/support/sse-client.js";

function flag(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const MESSAGES = flag("--messages", 20_000);
const BATCH = flag("--batch", 1);
const CHANNELS = flag("--channels", 64);
const IN_FLIGHT = flag("--in-flight", 8);

async function redisCpu(r: Redis): Promise<number> {
  const info = await r.info("cpu");
  const f = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return f("used_cpu_sys") + f("used_cpu_user");
}

async function run(shards: number): Promise<{ shards: number; totalUs: number; busiestUs: number; perServerUs: number[]; seconds: number }> {
  const servers = await Promise.all(Array.from({ length: shards }, () => RedisServer.start()));
  const clients = servers.map((s) => new Redis(s.url));
  const relays = [];
  const subs: SseClient[] = [];
  try {
    const channels = Array.from({ length: CHANNELS }, (_, i) => `bench:${i}`);
    for (let i = 0; i < 2; i++) {
      const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", REDIS_URL: servers.map((s) => s.url).join(" "), FANOUT_LOG_PARTITIONS: "16", FANOUT_HISTORY_SIZE: "1000" });
      const relay = await createRelay(config);
      const port = await relay.listen();
      relays.push(relay);
      const c = await SseClient.open(`http://127.0.0.1:${port}/v1/events?${channels.map((ch) => `channel=${ch}`).join("&")}`);
      await c.waitReady();
      subs.push(c);
    }
    const broker = relays[0].context.broker;
    const before = await Promise.all(clients.map(redisCpu));
    const t0 = process.hrtime.bigint();
    let next = 0;
    const worker = async () => {
      while (next < MESSAGES) {
        const from = next;
        next = Math.min(MESSAGES, next + BATCH);
        const batch = [];
        for (let i = from; i < next; i++) batch.push({ channel: channels[i % CHANNELS], data: String(i) });
        await broker.publish(batch);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    for (const c of subs) await c.waitMessages(MESSAGES, 120_000);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const after = await Promise.all(clients.map(redisCpu));
    const perServerUs = after.map((a, i) => ((a - before[i]) * 1e6) / MESSAGES);
    return { shards, totalUs: perServerUs.reduce((a, b) => a + b, 0), busiestUs: Math.max(...perServerUs), perServerUs, seconds };
  } finally {
    for (const c of subs) c.close();
    for (const r of relays) await r.drain(100);
    for (const c of clients) c.disconnect();
    for (const s of servers) await s.dispose();
  }
}

const one = await run(1);
const three = await run(3);
console.log(`${MESSAGES} messages, batch ${BATCH}, ${IN_FLIGHT} in flight, ${CHANNELS} channels, 16 partitions, 2 relays each holding every channel`);
console.log("| topology | Redis CPU µs/msg, all servers | busiest server µs/msg | per server | wall s |");
console.log("|---|---|---|---|---|");
for (const r of [one, three]) {
  console.log(`| ${r.shards === 1 ? "one Redis" : `${r.shards} independent shards`} | ${r.totalUs.toFixed(1)} (${(r.totalUs / one.totalUs).toFixed(2)}×) | ${r.busiestUs.toFixed(1)} (${(r.busiestUs / one.busiestUs).toFixed(2)}×) | ${r.perServerUs.map((x) => x.toFixed(1)).join(" / ")} | ${r.seconds.toFixed(1)} |`);
}
process.exit(0);
