/**
 * `npm run bench -- scale` — what scales with the number of Redis servers: Redis CPU per
 * published message, summed over every Redis process and for the busiest one, for each
 * topology in bench/scale-topologies.ts (one Redis, 3 independent shards, a 3-master Cluster
 * with classic and, where the relay has it, sharded pub/sub), under the same load: two relays
 * (child processes), each with one SSE client on every channel, and publishers in their own
 * processes publishing through the relay's broker (the publish script, as the API and the
 * edge functions run it), `--in-flight` batches awaited concurrently each.
 *
 * On a shared 2-core machine every server shares the cores, so wall-clock throughput says
 * little; CPU per message does. Ratios are against one Redis under the same load.
 *
 *   npm run bench -- scale               # single publishes at 32 and 512 in flight; batches of 20 mixed; on one channel each
 *   npm run bench -- scale --messages 60000 --loads 1,1@512,20,20/channel --publishers 2 --in-flight 32 --markdown
 *   npm run bench -- scale --topology "one redis" --relays 6   # Redis's cost per subscribing relay
 *
 * Each server's idle CPU (sampled for 2 s before each run) is taken off: it is paid per
 * second, not per message.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { boxBusySeconds, cpuSeconds, freePort, machine, sleep, treeCpuSeconds, waitForPort } from "./proc.js";
import type { FromScalePub, ToScalePub } from "./scale-pub-worker.js";
import { TOPOLOGIES, type RunningTopology, type Topology } from "./scale-topologies.js";

/**
 * Single publishes at the default 32 in flight per publisher (a light load: each of three
 * servers' event-loop passes carries a third of one server's, so Redis's per-pass cost weighs
 * more) and at 512 (closer to the load at which one Redis runs out of CPU, the reason to add
 * servers); batches of 20, mixed and on one channel.
 */
const DEFAULT_LOADS = "1,1@512,20,20/channel";
/** How long each server's idle CPU is sampled before a run. */
const IDLE_SAMPLE_MS = 2000;
const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..");

interface ScaleArgs {
  messages: number;
  /**
   * `<n>`: batches of n messages round-robin over the channels; `<n>/channel`: each batch on one
   * channel; `@<k>` after either: k batches in flight per publisher instead of `--in-flight`.
   */
  loads: Load[];
  publishers: number;
  inFlight: number;
  channels: number;
  partitions: number;
  markdown: boolean;
  relays: number;
  /** Names (or parts of names: "one", "shards", "classic", "sharded") of the topologies to run; empty: all. */
  only: string[];
}

interface Load {
  batch: number;
  oneChannel: boolean;
  /** Batches in flight per publisher; undefined: `--in-flight`. */
  inFlight?: number;
}

function parseLoads(s: string): Load[] {
  return s.split(",").map((x) => {
    const m = /^(\d+)(\/channel)?(?:@(\d+))?$/.exec(x.trim());
    if (!m || Number(m[1]) < 1 || m[3] === "0") throw new Error(`--loads: "${x}" is not <n>, <n>/channel, optionally followed by @<in flight>`);
    return { batch: Number(m[1]), oneChannel: Boolean(m[2]), inFlight: m[3] === undefined ? undefined : Number(m[3]) };
  });
}

function loadName(l: Load): string {
  const what = l.batch === 1 ? "single publishes" : `batches of ${l.batch}${l.oneChannel ? ", one channel each" : ", channels mixed"}`;
  return l.inFlight === undefined ? what : `${what}, ${l.inFlight} in flight`;
}

function parse(argv: string[]): ScaleArgs {
  const a: ScaleArgs = { messages: 40_000, loads: parseLoads(DEFAULT_LOADS), publishers: 2, inFlight: 32, channels: 64, partitions: 16, markdown: false, relays: 2, only: [] };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split("=", 2) as [string, string | undefined];
    const val = (): string => inline ?? argv[++i] ?? "";
    if (flag === "--messages") a.messages = Number(val());
    else if (flag === "--loads") a.loads = parseLoads(val());
    else if (flag === "--publishers") a.publishers = Number(val());
    else if (flag === "--in-flight") a.inFlight = Number(val());
    else if (flag === "--channels") a.channels = Number(val());
    else if (flag === "--partitions") a.partitions = Number(val());
    else if (flag === "--markdown") a.markdown = true;
    else if (flag === "--relays") a.relays = Number(val());
    else if (flag === "--topology") a.only = val().split(",").map((x) => x.trim().toLowerCase());
    else throw new Error(`unknown flag ${flag} (scale: --messages --loads --publishers --in-flight --relays --channels --partitions --topology --markdown)`);
  }
  return a;
}

interface ScaleResult {
  load: string;
  topology: string;
  na?: string;
  perServerUs: number[];
  totalUs: number;
  busiestUs: number;
  relayUs: number;
  pubRate: number;
  wallS: number;
  pubCpuPct: number;
  otherCpuPct: number;
}

/** Redis's own CPU seconds (used_cpu_sys + used_cpu_user: the whole process, cluster bus included). */
async function redisCpu(r: Redis): Promise<number> {
  const info = await r.info("cpu");
  const f = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return f("used_cpu_sys") + f("used_cpu_user");
}

/** An SSE stream that only counts message frames (their data is an envelope: `{"id":"…`). */
class FrameCounter {
  count = 0;
  private carry = "";
  private static readonly MARK = 'data: {"id":"';
  ready!: Promise<void>;
  private req?: ReturnType<typeof request>;
  constructor(url: string) {
    this.ready = new Promise((resolve, reject) => {
      this.req = request(url, { headers: { Accept: "text/event-stream" } }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`SSE ${res.statusCode}`));
        res.setEncoding("utf8");
        let seenReady = false;
        res.on("data", (chunk: string) => {
          const s = this.carry + chunk;
          for (let i = s.indexOf(FrameCounter.MARK); i >= 0; i = s.indexOf(FrameCounter.MARK, i + 1)) this.count++;
          this.carry = s.slice(-(FrameCounter.MARK.length - 1));
          if (!seenReady && s.includes("event: ready")) {
            seenReady = true;
            resolve();
          }
        });
      });
      this.req.on("error", reject);
      this.req.end();
    });
  }
  close(): void {
    this.req?.destroy();
  }
}

function spawnNode(file: string, env: Record<string, string>, ipc: boolean): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", file], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ipc ? ["ignore", "inherit", "inherit", "ipc"] : ["ignore", "ignore", "inherit"] });
}

function ask<T extends FromScalePub["type"]>(child: ChildProcess, msg: ToScalePub, want: T, timeoutMs: number): Promise<Extract<FromScalePub, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`publisher did not answer ${want} within ${timeoutMs} ms`)), timeoutMs);
    const on = (m: FromScalePub): void => {
      if (m.type === "error") {
        clearTimeout(timer);
        child.off("message", on);
        reject(new Error(`publisher: ${m.message}`));
      } else if (m.type === want) {
        clearTimeout(timer);
        child.off("message", on);
        resolve(m as Extract<FromScalePub, { type: T }>);
      }
    };
    child.on("message", on);
    child.send(msg);
  });
}

async function until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function runTopology(t: Topology, l: Load, a: ScaleArgs): Promise<ScaleResult> {
  const load = loadName(l);
  const base: ScaleResult = { load, topology: t.name, perServerUs: [], totalUs: NaN, busiestUs: NaN, relayUs: NaN, pubRate: NaN, wallS: NaN, pubCpuPct: NaN, otherCpuPct: NaN };
  const na = t.unavailable?.();
  if (na) return { ...base, na };
  const topo: RunningTopology = await t.start();
  const children: ChildProcess[] = [];
  const counters: FrameCounter[] = [];
  const nodes = topo.ports.map((p) => new Redis(p, "127.0.0.1"));
  try {
    const env = { HOST: "127.0.0.1", FANOUT_PUBLISH_KEYS: "scale-bench", FANOUT_LOG_PARTITIONS: String(a.partitions), FANOUT_LOG_PREFIX: "scale", ...topo.env };
    const channels = Array.from({ length: a.channels }, (_, i) => `scale:${i}`);
    const relayPids: number[] = [];
    for (let i = 0; i < a.relays; i++) {
      const port = await freePort();
      const relay = spawnNode("relay/main.ts", { ...env, PORT: String(port) }, false);
      children.push(relay);
      relayPids.push(relay.pid!);
      await waitForPort(port, 30_000, "127.0.0.1", () => relay.exitCode === null);
      const c = new FrameCounter(`http://127.0.0.1:${port}/v1/events?${channels.map((ch) => `channel=${encodeURIComponent(ch)}`).join("&")}`);
      counters.push(c);
      await c.ready;
    }
    const pubs = Array.from({ length: a.publishers }, () => spawnNode(join("bench", "scale-pub-worker.ts"), {}, true));
    children.push(...pubs);
    await Promise.all(pubs.map((p, k) => ask(p, { type: "start", env, channels, from: k, step: a.publishers, messages: a.messages, batch: l.batch, oneChannel: l.oneChannel, inFlight: l.inFlight ?? a.inFlight }, "ready", 60_000)));
    // The warm-up publishes (one per channel per publisher) have arrived: count from here.
    await until(() => counters.every((c) => c.count >= a.publishers * a.channels), 30_000, "warm-up deliveries");
    await sleep(200);
    // Each server's idle CPU (its cron, the cluster bus's gossip), measured here and taken
    // off the run's figure: it is paid per second, not per message.
    const idle0 = await Promise.all(nodes.map(redisCpu));
    const idleT0 = performance.now();
    await sleep(IDLE_SAMPLE_MS);
    const idleRate = (await Promise.all(nodes.map(redisCpu))).map((c, i) => (c - idle0[i]) / ((performance.now() - idleT0) / 1000));
    const start = counters.map((c) => c.count);
    const cpu0 = await Promise.all(nodes.map(redisCpu));
    const relay0 = relayPids.map(cpuSeconds);
    const box0 = boxBusySeconds();
    const mine0 = treeCpuSeconds(process.pid);
    const t0 = performance.now();
    const done = await Promise.all(pubs.map((p) => ask(p, { type: "go" }, "done", 300_000)));
    const failed = done.reduce((s, d) => s + d.failed, 0);
    if (failed) throw new Error(`${failed} publishes failed: ${done.find((d) => d.firstError)?.firstError}`);
    await until(() => counters.every((c, i) => c.count - start[i] >= a.messages), 120_000, `${a.messages} deliveries on each relay`);
    const wallS = (performance.now() - t0) / 1000;
    const cpu1 = await Promise.all(nodes.map(redisCpu));
    const relayS = relayPids.reduce((s, pid, i) => s + cpuSeconds(pid) - relay0[i], 0);
    const otherS = boxBusySeconds() - box0 - (treeCpuSeconds(process.pid) - mine0);
    const perServerUs = cpu1.map((c, i) => (Math.max(0, c - cpu0[i] - idleRate[i] * wallS) * 1e6) / a.messages);
    const pubElapsed = Math.max(...done.map((d) => d.elapsedMs)) / 1000;
    return {
      ...base,
      perServerUs,
      totalUs: perServerUs.reduce((s, x) => s + x, 0),
      busiestUs: Math.max(...perServerUs),
      relayUs: (relayS * 1e6) / a.messages / a.relays,
      pubRate: a.messages / pubElapsed,
      wallS,
      pubCpuPct: (done.reduce((s, d) => s + d.cpuUs, 0) / 1e6 / pubElapsed) * 100,
      otherCpuPct: Math.max(0, (otherS / wallS) * 100),
    };
  } finally {
    for (const c of counters) c.close();
    for (const ch of children) ch.kill("SIGKILL");
    for (const n of nodes) n.disconnect();
    await topo.stop();
  }
}

/** ✔ or ✘ against the goal for the topologies held to it, measured against one Redis under the same load. */
function goalMark(r: ScaleResult, one: ScaleResult | undefined): string {
  if (!TOPOLOGIES.find((t) => t.name === r.topology)?.goal || !one || Number.isNaN(r.totalUs)) return "";
  return r.totalUs <= 1.2 * one.totalUs && r.busiestUs <= 0.45 * one.busiestUs ? "✔" : "✘";
}

const f = (n: number, d = 1): string => (Number.isNaN(n) ? "–" : n.toFixed(d));

function rows(results: ScaleResult[]): string[][] {
  const out: string[][] = [["load", "topology", "Redis CPU µs/msg, all servers", "busiest server µs/msg", "per server", "relay CPU µs/msg (each)", "publish msg/s", "wall s", "pub CPU%", "other CPU%", "goal"]];
  for (const r of results) {
    const one = results.find((x) => x.load === r.load && x.topology === TOPOLOGIES[0].name);
    const ratio = (x: number, y: number | undefined): string => (y && !Number.isNaN(x) ? ` (${(x / y).toFixed(2)}×)` : "");
    if (r.na) out.push([r.load, r.topology, `n/a (${r.na})`, "", "", "", "", "", "", "", ""]);
    else
      out.push([
        r.load,
        r.topology,
        f(r.totalUs) + ratio(r.totalUs, one?.totalUs),
        f(r.busiestUs) + ratio(r.busiestUs, one?.busiestUs),
        r.perServerUs.map((x) => f(x)).join(" / "),
        f(r.relayUs),
        f(r.pubRate, 0),
        f(r.wallS),
        f(r.pubCpuPct, 0),
        f(r.otherCpuPct, 0),
        goalMark(r, one),
      ]);
  }
  return out;
}

function print(t: string[][], md: boolean): string {
  if (md) return t.map((r, i) => `| ${r.join(" | ")} |${i === 0 ? `\n|${r.map(() => "---").join("|")}|` : ""}`).join("\n");
  const w = t[0].map((_, c) => Math.max(...t.map((r) => (r[c] ?? "").length)));
  return t.map((r) => r.map((v, c) => v.padEnd(w[c])).join("  ")).join("\n");
}

export async function runScale(argv: string[]): Promise<void> {
  const a = parse(argv);
  const m = machine();
  console.log(`edge-fanout bench: scale — ${new Date().toISOString()}\nmachine: ${m.nproc} × ${m.cpu}, ${m.memGb} GB RAM, Node ${process.version}`);
  console.log(
    `${a.messages} messages per run (idle CPU subtracted) over ${a.channels} channels, ${a.partitions} partitions; ${a.publishers} publisher processes × ${a.inFlight} in flight; ${a.relays} relays, each with one SSE client on every channel`,
  );
  const results: ScaleResult[] = [];
  for (const l of a.loads) {
    for (const t of TOPOLOGIES.filter((x) => a.only.length === 0 || a.only.some((o) => x.name.toLowerCase().includes(o)))) {
      let r: ScaleResult;
      try {
        r = await runTopology(t, l, a);
      } catch (e) {
        r = { load: loadName(l), topology: t.name, na: `error: ${(e as Error).message.split("\n")[0]}`, perServerUs: [], totalUs: NaN, busiestUs: NaN, relayUs: NaN, pubRate: NaN, wallS: NaN, pubCpuPct: NaN, otherCpuPct: NaN };
      }
      results.push(r);
      console.log(print(rows(results).slice(-1).map((x) => x), false));
    }
  }
  console.log("\n" + print(rows(results), a.markdown));
  console.log(
    "\nGoal (issue 11, the goal column): independent shards and sharded Cluster at most 1.2× one Redis's total CPU per message, and the busiest server at most 0.45× one Redis's. " +
      "Classic Cluster is shown for contrast: its PUBLISH is broadcast to every node. On a 2-core machine the servers share the cores.",
  );
  process.exit(0);
}
