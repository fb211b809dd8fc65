/**
 * `npx tsx bench/pattern-routes.ts` — Redis CPU per PUBLISH with 1,000 client globs held by
 * one relay, Redis's side only (docs/protocol.md, Patterns in Redis mode): the patterns the
 * relay used to subscribe (one per glob, cut after its first `*` run, which for these shapes is
 * the glob itself) against the bounded routes of relay/redis/pattern-routes.ts. One subscriber
 * connection holds the patterns and drains what arrives; plain PUBLISHes go round-robin to the
 * 1,000 channels, pipelined.
 *
 * Flags: --messages <n> (default 50000), --globs <n> (default 1000).
 */
import { Redis } from "ioredis";
import { PatternRoutes } from "../relay/redis/pattern-routes.js";
import { RedisServer } from "../test/support/redis-server.js";

function flag(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const MESSAGES = flag("--messages", 50_000);
const GLOBS = flag("--globs", 1000);

async function redisCpu(r: Redis): Promise<number> {
  const info = await r.info("cpu");
  const f = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return f("used_cpu_sys") + f("used_cpu_user");
}

const shapes = {
  "e<i>_* (scenario e)": { glob: (i: number) => `e${i}_*`, channel: (i: number) => `e${i}_m` },
  "user:<i>:*": { glob: (i: number) => `user:${i}:*`, channel: (i: number) => `user:${i}:x` },
};

async function run(shape: keyof typeof shapes, mode: "per glob" | "routes"): Promise<{ patterns: number; us: number }> {
  const server = await RedisServer.start();
  const pub = new Redis(server.url);
  const sub = new Redis(server.url);
  try {
    let received = 0;
    sub.on("pmessageBuffer", () => received++);
    const { glob, channel } = shapes[shape];
    if (mode === "per glob") {
      for (let i = 0; i < GLOBS; i += 100) await sub.psubscribe(...Array.from({ length: Math.min(100, GLOBS - i) }, (_, k) => glob(i + k)));
    } else {
      const routes = new PatternRoutes({ psubscribe: (p) => sub.psubscribe(p), punsubscribe: (p) => sub.punsubscribe(p) });
      for (let i = 0; i < GLOBS; i++) await routes.add(glob(i));
    }
    const patterns = Number(await pub.call("PUBSUB", "NUMPAT"));
    const before = await redisCpu(pub);
    for (let i = 0; i < MESSAGES; i += 500) {
      const p = pub.pipeline();
      for (let k = i; k < Math.min(MESSAGES, i + 500); k++) p.publish(channel(k % GLOBS), "x".repeat(100));
      await p.exec();
    }
    const after = await redisCpu(pub);
    if (received < MESSAGES) throw new Error(`received ${received} of ${MESSAGES}`);
    return { patterns, us: ((after - before) * 1e6) / MESSAGES };
  } finally {
    pub.disconnect();
    sub.disconnect();
    await server.dispose();
  }
}

console.log(`Redis CPU per PUBLISH, ${GLOBS.toLocaleString("en")} client globs, ${MESSAGES.toLocaleString("en")} messages (100 B)`);
console.log("| globs | Redis patterns held | patterns | Redis µs/PUBLISH |\n|---|---|---|---|");
for (const shape of Object.keys(shapes) as (keyof typeof shapes)[]) {
  for (const mode of ["per glob", "routes"] as const) {
    const r = await run(shape, mode);
    console.log(`| ${shape} | ${mode} | ${r.patterns} | ${r.us.toFixed(2)} |`);
  }
}
