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
 * little; CPU per message does. Ratios are against one Redis under the same load. The same
 * run of the same code moves by 20–30 % on a shared VM, so `--repeat N` runs every topology N
 * times, interleaved, and reports medians: each ratio is the median of the ratios measured in
 * the same round (one Redis and the topology a minute apart), with its lowest and highest.
 *
 *   npm run bench -- scale               # single publishes at 32 and 512 in flight; batches of 20 mixed; on one channel each
 *   npm run bench -- scale --repeat 3 --topology "one,shards,1 master,sharded"   # the goal's rows, medians of 3 rounds
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
/**
 * Single publishes with at most this many in flight per publisher are the light load: shown
 * for contrast, its goal mark in parentheses. Each of three servers' script calls then carries
 * about a fifth of what one Redis's do (the "msgs per script call" column), and Redis pays per call
 * and per event-loop pass as well as per message, so the total rises; it is CPU those servers
 * have to spare at such a load, and the calls grow with the load (group commit). The goal is
 * about capacity, which is what the other loads approach (docs/benchmarks.md, "Light load").
 */
const LIGHT_IN_FLIGHT = 32;
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
  /**
   * Runs of each topology per load, interleaved (every topology once, then again): the table
   * gives medians, and each ratio is the median of the ratios measured in the same round.
   */
  repeat: number;
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

function isLight(l: Load, a: ScaleArgs): boolean {
  return l.batch === 1 && (l.inFlight ?? a.inFlight) <= LIGHT_IN_FLIGHT;
}

function loadName(l: Load): string {
  const what = l.batch === 1 ? "single publishes" : `batches of ${l.batch}${l.oneChannel ? ", one channel each" : ", channels mixed"}`;
  return l.inFlight === undefined ? what : `${what}, ${l.inFlight} in flight`;
}

function parse(argv: string[]): ScaleArgs {
  const a: ScaleArgs = { messages: 40_000, loads: parseLoads(DEFAULT_LOADS), publishers: 2, inFlight: 32, channels: 64, partitions: 16, markdown: false, relays: 2, only: [], repeat: 1 };
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
    else if (flag === "--repeat") a.repeat = Math.max(1, Number(val()));
    else throw new Error(`unknown flag ${flag} (scale: --messages --loads --publishers --in-flight --relays --channels --partitions --topology --repeat --markdown)`);
  }
  return a;
}

interface ScaleResult {
  load: string;
  topology: string;
  /** Which round of `--repeat` this run was in. */
  round: number;
  /** Single publishes at LIGHT_IN_FLIGHT or fewer in flight. */
  light: boolean;
  na?: string;
  perServerUs: number[];
  /** Messages per publish script call (EVALSHA or EVAL), over every server. */
  perCall: number;
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

/** Publish script calls this server has run (EVALSHA and EVAL), from INFO commandstats. */
async function scriptCalls(r: Redis): Promise<number> {
  const info = await r.info("commandstats");
  const calls = (cmd: string) => Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, "m").exec(info)?.[1] ?? 0);
  return calls("evalsha") + calls("eval");
}

/** Messages per script call; NaN (printed "–") when no call was counted, rather than Infinity. */
function perCall(messages: number, calls: number): number {
  return calls > 0 ? messages / calls : NaN;
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

async function runTopology(t: Topology, l: Load, a: ScaleArgs, round: number): Promise<ScaleResult> {
  const load = loadName(l);
  const base: ScaleResult = { load, topology: t.name, round, light: isLight(l, a), perServerUs: [], perCall: NaN, totalUs: NaN, busiestUs: NaN, relayUs: NaN, pubRate: NaN, wallS: NaN, pubCpuPct: NaN, otherCpuPct: NaN };
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
    const calls0 = await Promise.all(nodes.map(scriptCalls));
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
    const calls1 = await Promise.all(nodes.map(scriptCalls));
    const relayS = relayPids.reduce((s, pid, i) => s + cpuSeconds(pid) - relay0[i], 0);
    const otherS = boxBusySeconds() - box0 - (treeCpuSeconds(process.pid) - mine0);
    const perServerUs = cpu1.map((c, i) => (Math.max(0, c - cpu0[i] - idleRate[i] * wallS) * 1e6) / a.messages);
    const pubElapsed = Math.max(...done.map((d) => d.elapsedMs)) / 1000;
    return {
      ...base,
      perServerUs,
      perCall: perCall(a.messages, calls1.reduce((s, c, i) => s + c - calls0[i], 0)),
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

/** One (load, topology) over its runs: medians, and its ratios to one Redis as measured round by round. */
interface Summary extends ScaleResult {
  runs: number;
  /** Median, lowest and highest over the rounds of (this run ÷ one Redis's run in the same round), total and busiest. */
  totalRatio?: Spread;
  busiestRatio?: Spread;
}

interface Spread {
  med: number;
  min: number;
  max: number;
}

function median(xs: number[]): number {
  const v = xs.filter((x) => !Number.isNaN(x)).sort((x, y) => x - y);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

function spread(xs: number[]): Spread | undefined {
  const v = xs.filter((x) => !Number.isNaN(x));
  return v.length ? { med: median(v), min: Math.min(...v), max: Math.max(...v) } : undefined;
}

function summarize(results: ScaleResult[]): Summary[] {
  const out: Summary[] = [];
  for (const r of results) {
    if (out.some((x) => x.load === r.load && x.topology === r.topology)) continue;
    const runs = results.filter((x) => x.load === r.load && x.topology === r.topology);
    const ok = runs.filter((x) => !x.na);
    if (ok.length === 0) {
      out.push({ ...r, runs: runs.length });
      continue;
    }
    const one = (round: number) => results.find((x) => x.load === r.load && x.topology === TOPOLOGIES[0].name && x.round === round && !x.na);
    const ratios = (k: "totalUs" | "busiestUs") => ok.map((x) => (one(x.round) ? x[k] / one(x.round)![k] : NaN));
    const m = (k: keyof ScaleResult) => median(ok.map((x) => x[k] as number));
    out.push({
      ...ok[0],
      runs: ok.length,
      perServerUs: ok[0].perServerUs.map((_, i) => median(ok.map((x) => x.perServerUs[i]))),
      perCall: m("perCall"),
      totalUs: m("totalUs"),
      busiestUs: m("busiestUs"),
      relayUs: m("relayUs"),
      pubRate: m("pubRate"),
      wallS: m("wallS"),
      pubCpuPct: m("pubCpuPct"),
      otherCpuPct: m("otherCpuPct"),
      totalRatio: spread(ratios("totalUs")),
      busiestRatio: spread(ratios("busiestUs")),
    });
  }
  return out;
}

/**
 * ✔ or ✘ against the goal for the topologies held to it: the median ratios to one Redis,
 * measured side by side. At the light load the mark is shown in parentheses (LIGHT_IN_FLIGHT).
 */
function goalMark(r: Summary): string {
  if (!TOPOLOGIES.find((t) => t.name === r.topology)?.goal || !r.totalRatio || !r.busiestRatio) return "";
  const mark = r.totalRatio.med <= 1.2 && r.busiestRatio.med <= 0.45 ? "✔" : "✘";
  return r.light ? `(${mark}) light` : mark;
}

const f = (n: number, d = 1): string => (Number.isNaN(n) ? "–" : n.toFixed(d));
const ratio = (x: Spread | undefined): string => (!x ? "" : x.min === x.max ? ` (${x.med.toFixed(2)}×)` : ` (${x.med.toFixed(2)}×, ${x.min.toFixed(2)}–${x.max.toFixed(2)})`);

function rows(results: ScaleResult[]): string[][] {
  const out: string[][] = [["load", "topology", "Redis CPU µs/msg, all servers", "busiest server µs/msg", "per server", "msgs per script call", "relay CPU µs/msg (each)", "publish msg/s", "wall s", "pub CPU%", "other CPU%", "goal"]];
  for (const r of summarize(results)) {
    if (Number.isNaN(r.totalUs)) out.push([r.load, r.topology, `n/a (${r.na})`, "", "", "", "", "", "", "", "", ""]);
    else
      out.push([
        r.load,
        r.topology,
        f(r.totalUs) + ratio(r.totalRatio),
        f(r.busiestUs) + ratio(r.busiestRatio),
        r.perServerUs.map((x) => f(x)).join(" / "),
        f(r.perCall),
        f(r.relayUs),
        f(r.pubRate, 0),
        f(r.wallS),
        f(r.pubCpuPct, 0),
        f(r.otherCpuPct, 0),
        goalMark(r),
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
    `${a.messages} messages per run (idle CPU subtracted) over ${a.channels} channels, ${a.partitions} partitions; ${a.publishers} publisher processes × ${a.inFlight} in flight; ${a.relays} relays, each with one SSE client on every channel` +
      (a.repeat > 1 ? `; ${a.repeat} rounds, medians` : ""),
  );
  const results: ScaleResult[] = [];
  const topologies = TOPOLOGIES.filter((x) => a.only.length === 0 || a.only.some((o) => x.name.toLowerCase().includes(o)));
  for (const l of a.loads) {
    for (let round = 0; round < a.repeat; round++) {
      for (const t of topologies) {
        if (round > 0 && t.unavailable?.()) continue; // said once, in the first round
        let r: ScaleResult;
        try {
          r = await runTopology(t, l, a, round);
        } catch (e) {
          r = { load: loadName(l), topology: t.name, round, light: isLight(l, a), na: `error: ${(e as Error).message.split("\n")[0]}`, perServerUs: [], perCall: NaN, totalUs: NaN, busiestUs: NaN, relayUs: NaN, pubRate: NaN, wallS: NaN, pubCpuPct: NaN, otherCpuPct: NaN };
        }
        results.push(r);
        // Progress: this run alone, against one Redis's run of the same round.
        const same = results.filter((x) => x.round === round && x.load === r.load && (x === r || x.topology === TOPOLOGIES[0].name));
        const row = rows(same).find((x) => x[1] === r.topology)!;
        console.log((a.repeat > 1 ? `[round ${round + 1}] ` : "") + row.join("  "));
      }
    }
  }
  console.log("\n" + print(rows(results), a.markdown));
  console.log(
    "\nGoal (issue 11, the goal column): independent shards and sharded Cluster at most 1.2× one Redis's total CPU per message, and the busiest server at most 0.45× one Redis's; " +
      `single publishes at ${LIGHT_IN_FLIGHT} or fewer in flight are the light-load contrast, their mark in parentheses (docs/benchmarks.md, "Light load"). ` +
      "Classic Cluster is shown for contrast: its PUBLISH is broadcast to every node. On a 2-core machine the servers share the cores.",
  );
  process.exit(0);
}
