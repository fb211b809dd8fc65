/**
 * `npm run bench` — fan-out throughput, latency and memory of the relay side by side with
 * Nchan and Socket.IO (Redis adapter + emitter), in the same run, on the same machine; for the
 * publish path alone also a bare node:http endpoint (node-floor).
 *
 *   npm run bench                                   # every scenario on every target
 *   npm run bench -- --scenario a,c --target relay-memory,nchan-memory
 *   npm run bench -- --scenario a,c,d,p --target relay-redis,socketio-redis,node-floor   # vs Socket.IO; node-floor: p only
 *   npm run bench -- --quick                        # 3 s runs, 2,000 instead of 10,000 subs
 *   npm run bench -- --profile --target relay-memory --scenario c   # + node --cpu-prof of the relay
 *   npm run bench -- --markdown                     # also print the tables as Markdown
 *   npm run bench -- stalled                        # relay memory under 1,000 stalled clients (bench/stalled.ts)
 *   npm run bench -- scale                          # Redis CPU per message: one Redis, shards, Cluster (bench/scale.ts)
 *
 * Other flags: --duration <ms>, --subs <n>, --rate <msg/s>, --window <n>, --payload <bytes>,
 * --sub-procs <n>, --nginx-workers <n>, --json <file>, --quiet-wait <ms> (how long to wait before each
 * run for other processes on the box to go under 25% of a core; default 10000, 0 = never),
 * --root <dir> (run another checkout's relay, e.g. the commit before a change), --env NAME=value
 * (relay environment, repeatable), --warmup <ms> (publish this long before measuring; default
 * 8000, 0 = none: see warmUp below).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Histogram } from "./histogram.js";
import { boxBusySeconds, cpuSeconds, foreignCpuPct, machine, sleep, treeCpuSeconds, treePssBytes, treeRssBytes } from "./proc.js";
import { summarizeProfileDir } from "./profile-summary.js";
import type { FromPub, PubChannel, ToPub } from "./pub-worker.js";
import { channelName, patternName, scenarios, type Scenario, type ScenarioId, type Variant } from "./scenarios.js";
import type { FromSub, SubConnSpec, SubReport, ToSub } from "./sub-worker.js";
import { runStalled } from "./stalled.js";
import { runScale } from "./scale.js";
import type { ToSioPub } from "./socketio-pub-worker.js";
import { TARGETS, TARGET_SCENARIOS, nchanAvailable, relayPresent, startTarget, type Running, type TargetName } from "./targets.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..");

interface Args {
  scenarios: ScenarioId[];
  targets: TargetName[];
  quick: boolean;
  profile: boolean;
  markdown: boolean;
  duration?: number;
  subs?: number;
  rate?: number;
  window?: number;
  payload: number;
  subProcs?: number;
  nginxWorkers: number;
  json?: string;
  quietWaitMs: number;
  /** Checkout whose relay runs (default: this one), e.g. the commit before a change. */
  root: string;
  /** Extra relay environment (`--env NAME=value`, repeatable). */
  env: Record<string, string>;
  /** Publishing before the measured window, per run (ms); 0 = none. */
  warmupMs: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { scenarios: ["a", "b", "c", "d", "e", "p", "z"], targets: [...TARGETS], quick: false, profile: false, markdown: false, payload: 0, nginxWorkers: 2, quietWaitMs: 10000, root: repoRoot, env: {}, warmupMs: 8000 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split("=", 2) as [string, string | undefined];
    const val = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--scenario":
      case "--scenarios":
        a.scenarios = val().split(",") as ScenarioId[];
        break;
      case "--target":
      case "--targets":
        a.targets = val().split(",") as TargetName[];
        break;
      case "--quick":
        a.quick = true;
        break;
      case "--profile":
        a.profile = true;
        break;
      case "--markdown":
        a.markdown = true;
        break;
      case "--duration":
        a.duration = Number(val());
        break;
      case "--subs":
        a.subs = Number(val());
        break;
      case "--rate":
        a.rate = Number(val());
        break;
      case "--window":
        a.window = Number(val());
        break;
      case "--payload":
        a.payload = Number(val());
        break;
      case "--sub-procs":
        a.subProcs = Number(val());
        break;
      case "--nginx-workers":
        a.nginxWorkers = Number(val());
        break;
      case "--quiet-wait":
        a.quietWaitMs = Number(val());
        break;
      case "--json":
        a.json = val();
        break;
      case "--warmup":
        a.warmupMs = Number(val());
        if (!(a.warmupMs >= 0)) throw new Error("--warmup needs a number of ms (0 = none)");
        break;
      case "--root":
        a.root = resolve(val());
        break;
      case "--env": {
        const kv = val();
        const eq = kv.indexOf("=");
        if (eq <= 0) throw new Error("--env needs NAME=value");
        a.env[kv.slice(0, eq)] = kv.slice(eq + 1);
        break;
      }
      case "-h":
      case "--help":
        console.log(
          "usage: npm run bench -- [--scenario a,b,c,d,e,p,z] [--target relay-memory,relay-redis,nchan-memory,nchan-redis,socketio-redis,node-floor] [--quick] [--profile] [--markdown] [--duration ms] [--subs n] [--rate n] [--window n] [--payload bytes] [--sub-procs n] [--nginx-workers n] [--json file] [--quiet-wait ms] [--root checkout] [--env NAME=value] [--warmup ms]",
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown flag ${flag} (try --help)`);
    }
  }
  for (const s of a.scenarios) if (!"abcdepz".includes(s) || s.length !== 1) throw new Error(`unknown scenario ${s}`);
  for (const t of a.targets) if (!TARGETS.includes(t)) throw new Error(`unknown target ${t} (${TARGETS.join(", ")})`);
  return a;
}

export interface Result {
  scenario: ScenarioId;
  target: TargetName;
  /** Payload/compression variant (scenario z). */
  variant?: string;
  /** Response body bytes received per delivery, as sent on the wire. */
  wireBytesPerDelivery?: number;
  note?: string;
  error?: string;
  subs: number;
  connected: number;
  connectMs: number;
  /** Server CPU while the subscribers connected, per subscriber (µs). */
  usPerConnect?: number;
  published: number;
  pubFailed: number;
  pubRate: number;
  deliveries: number;
  expected: number;
  deliveriesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  loss: number;
  dup: number;
  ooo: number;
  misrouted: number;
  closedDuringRun: number;
  serverCpuPct: number;
  usPerDelivery: number;
  redisUsPerDelivery?: number;
  /** Server CPU per publish request answered 2xx (µs), and Redis's. */
  usPerPublish?: number;
  redisUsPerPublish?: number;
  rssMb: number;
  /** (d): RSS / PSS per idle connection, bytes. */
  rssPerConn?: number;
  pssPerConn?: number;
  subCpuPct: number[];
  pubCpuPct: number;
  pubLagMs: number;
  pubElapsedMs?: number;
  /** Open loop: messages due but not sent by the deadline (the server answered too slowly). */
  pubUnsent?: number;
  pubRttP50Ms?: number;
  pubRttMaxMs?: number;
  wallS?: number;
  /** CPU used by processes outside this benchmark during the window (% of one core). */
  otherCpuPct: number;
}

function spawnWorker(file: string): ChildProcess {
  // open-file limit raised to the hard limit; IPC fd passes through bash's exec
  return spawn("bash", ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', "bash", process.execPath, "--import", "tsx", file], {
    cwd: repoRoot,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

function request<T extends { type: string }>(child: ChildProcess, msg: unknown, want: T["type"], timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off("message", on);
      reject(new Error(`worker did not answer ${want} within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (m: T): void => {
      if (m.type !== want) return;
      clearTimeout(timer);
      child.off("message", on);
      child.off("exit", onExit);
      resolve(m);
    };
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      child.off("message", on);
      reject(new Error(`worker exited (${code}) before ${want}`));
    };
    child.on("message", on);
    child.once("exit", onExit);
    if (msg) child.send(msg as object);
  });
}

const ms = (us: number): number => us / 1000;

/** Waits (up to maxMs) until other processes on the box use less than `limit`% of a core. */
async function waitQuiet(limit: number, maxMs: number): Promise<number> {
  const t0 = Date.now();
  let pct = await foreignCpuPct(process.pid, 1000);
  while (pct > limit && Date.now() - t0 < maxMs) {
    process.stdout.write(`    (other processes use ${pct.toFixed(0)}% CPU; waiting for the box to quiet down)\n`);
    pct = await foreignCpuPct(process.pid, 2000);
  }
  return pct;
}

/** What to stop if the run is interrupted (Ctrl-C): the current server and workers. */
const cleanup = new Set<() => Promise<void> | void>();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping servers and workers`);
    void Promise.allSettled([...cleanup].map((f) => f())).then(() => process.exit(130));
  });
}

/**
 * Publishes at the scenario's rate (closed loop: as fast as answered) for `warmMs` before the
 * measured window, on the same connections and URL/body shapes, to channels nobody subscribes
 * to (`w` + the channel's name, same count; the Socket.IO emitter: rooms nobody joined).
 *
 * Why: a fresh Node server spends its first seconds in V8 compiling (relay-memory measured
 * 235–251 µs per publish 3–9 s after load starts, 124–139 µs at 25–31 s; bare node:http
 * 130–139 → 66–90 µs), while Nchan (C) has no warm-up; real servers are long-running, so the
 * bench reports steady state, for every target alike.
 *
 * Why unsubscribed channels: the subscribers' counters (loss, dups, order, latency) and the
 * sequence numbers stay untouched without any change to the subscribers, while the whole
 * publish path (HTTP, auth, validation, broker, pattern matching, Redis, script) runs hot.
 * The delivery path is not warmed by this; at these fan-outs (hundreds to thousands of
 * deliveries per publish) it gets hot within the first moments of the measured window.
 * Server CPU, publisher and subscriber counters are all taken after the warm-up.
 */
async function warmUp(pub: ChildProcess, channels: PubChannel[], warmMs: number): Promise<void> {
  const done = await request<Extract<FromPub, { type: "done" }>>(pub, { type: "warmup", channels, durationMs: warmMs } satisfies ToPub, "done", warmMs + 60000);
  if (done.failed) throw new Error(`warm-up: ${done.failed} publishes failed (${JSON.stringify(done.statuses)}): ${done.firstError}`);
}

async function runOne(sc: Scenario, target: TargetName, args: Args, variant?: Variant): Promise<Result> {
  if (args.quietWaitMs > 0) await waitQuiet(25, args.quietWaitMs);
  const profDir = args.profile && !target.startsWith("nchan") ? join(here, "profiles", `${target}-${sc.id}`) : undefined;
  if (profDir) mkdirSync(profDir, { recursive: true });
  const srv: Running = await startTarget(target, {
    repoRoot: args.root,
    relayEnv: variant?.gzip ? { ...args.env, FANOUT_COMPRESSION: "gzip" } : args.env,
    nginxWorkers: args.nginxWorkers,
    relayNodeArgs: profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [],
  });
  const subs: ChildProcess[] = [];
  let pub: ChildProcess | undefined;
  const kill = (): void => {
    for (const w of subs) w.kill();
    pub?.kill();
  };
  const stopSrv = (): Promise<void> => srv.stop();
  cleanup.add(kill);
  cleanup.add(stopSrv);
  const r: Result = {
    scenario: sc.id,
    target,
    variant: variant?.label,
    subs: sc.subs,
    connected: 0,
    connectMs: 0,
    published: 0,
    pubFailed: 0,
    pubRate: 0,
    deliveries: 0,
    expected: 0,
    deliveriesPerSec: 0,
    p50Ms: NaN,
    p99Ms: NaN,
    maxMs: NaN,
    loss: 0,
    dup: 0,
    ooo: 0,
    misrouted: 0,
    closedDuringRun: 0,
    serverCpuPct: 0,
    usPerDelivery: NaN,
    rssMb: 0,
    otherCpuPct: 0,
    subCpuPct: [],
    pubCpuPct: 0,
    pubLagMs: 0,
  };
  try {
    await sleep(500);
    const rss0 = treeRssBytes(srv.pid);
    const pss0 = treePssBytes(srv.pid);
    // subscribers: subscriber j listens to channel j % channels, on process j % procs
    const procs = Math.max(1, args.subProcs ?? sc.subProcs);
    const specs: SubConnSpec[][] = Array.from({ length: procs }, () => []);
    const patternsUnsupported = sc.patterns && srv.subPattern("x") === undefined;
    if (patternsUnsupported) r.note = `no glob subscriptions in ${target.startsWith("socketio") ? "Socket.IO (rooms)" : "Nchan"}: exact channels`;
    for (let j = 0; j < sc.subs; j++) {
      const k = j % sc.channels;
      const path = sc.patterns && !patternsUnsupported ? srv.subPattern(patternName(sc, k))! : srv.subChannel(channelName(sc, k));
      specs[j % procs].push({ path, key: k });
    }
    for (let p = 0; p < procs; p++) subs.push(spawnWorker(join(here, srv.subWorker ?? "sub-worker.ts")));
    if (!sc.idle) pub = spawnWorker(join(here, srv.pubWorker ?? "pub-worker.ts"));
    const t0 = Date.now();
    const connCpu0 = treeCpuSeconds(srv.pid);
    const connected = await Promise.all(
      subs.map((w, p) =>
        request<Extract<FromSub, { type: "connected" }>>(
          w,
          { type: "connect", host: srv.host, port: srv.port, conns: specs[p], readyEvent: srv.readyEvent, concurrency: 200, timeoutMs: 60000, acceptGzip: variant?.gzip } satisfies ToSub,
          "connected",
          70000,
        ),
      ),
    );
    r.connectMs = Date.now() - t0;
    r.usPerConnect = sc.subs > 0 ? ((treeCpuSeconds(srv.pid) - connCpu0) * 1e6) / sc.subs : undefined;
    r.connected = connected.reduce((s, c) => s + c.ready, 0);
    const failed = connected.reduce((s, c) => s + c.failed, 0);
    if (failed > 0) r.error = `${failed} subscriptions failed: ${connected.find((c) => c.firstError)?.firstError}`;

    if (sc.idle) {
      await sleep(sc.durationMs);
      const rss1 = treeRssBytes(srv.pid);
      const pss1 = treePssBytes(srv.pid);
      r.rssMb = rss1 / 2 ** 20;
      r.rssPerConn = (rss1 - rss0) / Math.max(1, r.connected);
      r.pssPerConn = (pss1 - pss0) / Math.max(1, r.connected);
      return r;
    }

    const channels: PubChannel[] = [];
    for (let i = 0; i < sc.channels; i++) {
      const name = channelName(sc, i);
      channels.push({ path: srv.pubPath(name), body: srv.pubBody(name), key: i });
    }
    // Warm-up channels: the same count, a `w` in front of each name (see warmUp).
    const warm: PubChannel[] = channels.map((c, i) => {
      const name = `w${channelName(sc, i)}`;
      return { path: srv.pubPath(name), body: srv.pubBody(name), key: c.key };
    });
    const rate = args.rate ?? sc.rate;
    await request(
      pub!,
      {
        type: "start",
        host: srv.host,
        port: srv.port,
        channels,
        connections: sc.pubConns,
        window: args.window ?? sc.window,
        rate,
        durationMs: args.duration ?? sc.durationMs,
        contentType: srv.contentType,
        payloadBytes: variant?.payloadBytes ?? args.payload,
        payloadJson: variant !== undefined,
        ...(srv.redisUrl ? { redisUrl: srv.redisUrl, warmupRooms: warm.map((c) => c.path) } : {}),
      } satisfies ToPub | ToSioPub,
      "ready",
      10000,
    );
    if (args.warmupMs > 0) await warmUp(pub!, warm, args.warmupMs);
    for (const w of subs) w.send({ type: "mark" } satisfies ToSub);
    await sleep(50);
    const box0 = boxBusySeconds();
    const mine0 = treeCpuSeconds(process.pid);
    const cpu0 = treeCpuSeconds(srv.pid);
    const rcpu0 = srv.redisPid ? cpuSeconds(srv.redisPid) : 0;
    const wall0 = performance.now();
    let peakRss = 0;
    const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, treeRssBytes(srv.pid))), 500);
    const done = await request<Extract<FromPub, { type: "done" }>>(pub!, { type: "go" } satisfies ToPub, "done", (args.duration ?? sc.durationMs) + 60000);
    const subsPerKey = new Array<number>(sc.channels).fill(0);
    for (let j = 0; j < sc.subs; j++) subsPerKey[j % sc.channels]++;
    r.expected = done.published.reduce((s, n, k) => s + n * subsPerKey[k], 0);
    // drain: until every expected delivery arrived, or nothing new for 2 s (max 20 s)
    let lastUnique = -1;
    let lastChange = performance.now();
    let lastArrival = performance.now();
    const drainStart = performance.now();
    for (;;) {
      const ps = await Promise.all(subs.map((w) => request<Extract<FromSub, { type: "progress" }>>(w, { type: "progress" }, "progress", 10000)));
      const unique = ps.reduce((s, p) => s + p.unique, 0);
      const now = performance.now();
      if (unique !== lastUnique) {
        lastUnique = unique;
        lastChange = now;
        lastArrival = now;
      }
      if (unique >= r.expected || now - lastChange > 2000 || now - drainStart > 20000) break;
      await sleep(20);
    }
    clearInterval(rssTimer);
    const wall = (lastArrival - wall0) / 1000;
    const cpu = treeCpuSeconds(srv.pid) - cpu0;
    const rcpu = srv.redisPid ? cpuSeconds(srv.redisPid) - rcpu0 : 0;
    const wallCpu = (performance.now() - wall0) / 1000;
    r.otherCpuPct = Math.max(0, ((boxBusySeconds() - box0 - (treeCpuSeconds(process.pid) - mine0)) / wallCpu) * 100);
    r.rssMb = Math.max(peakRss, treeRssBytes(srv.pid)) / 2 ** 20;
    const reports = await Promise.all(subs.map((w) => request<SubReport>(w, { type: "report", published: done.published } satisfies ToSub, "report", 20000)));
    const hist = new Histogram();
    let wire = 0;
    for (const rep of reports) {
      hist.merge(rep.hist);
      r.deliveries += rep.received;
      wire += rep.wireBytes;
      r.loss += rep.loss;
      r.dup += rep.dup;
      r.ooo += rep.ooo;
      r.misrouted += rep.wrongKey;
      r.closedDuringRun += rep.closedDuringRun;
      r.subCpuPct.push(Math.round((rep.cpuUs / 1e6 / wallCpu) * 100));
    }
    r.published = done.ok;
    r.pubFailed = done.failed;
    if (done.failed) r.error = `${done.failed} publishes failed (${JSON.stringify(done.statuses)}): ${done.firstError}`;
    r.pubRate = done.ok / (done.elapsedMs / 1000);
    r.pubCpuPct = Math.round((done.cpuUs / 1000 / done.elapsedMs) * 100);
    r.pubLagMs = done.maxLagMs;
    r.pubElapsedMs = done.elapsedMs;
    r.pubUnsent = done.unsent;
    r.pubRttP50Ms = done.rttP50Us / 1000;
    r.pubRttMaxMs = done.rttMaxUs / 1000;
    r.wallS = wall;
    r.deliveriesPerSec = r.deliveries / wall;
    r.p50Ms = ms(hist.quantile(0.5));
    r.p99Ms = ms(hist.quantile(0.99));
    r.maxMs = ms(hist.max);
    r.serverCpuPct = (cpu / wallCpu) * 100;
    r.usPerDelivery = r.deliveries > 0 ? (cpu * 1e6) / r.deliveries : NaN;
    if (srv.redisPid && r.deliveries > 0) r.redisUsPerDelivery = (rcpu * 1e6) / r.deliveries;
    r.usPerPublish = (cpu * 1e6) / Math.max(1, done.ok);
    if (r.deliveries > 0) r.wireBytesPerDelivery = wire / r.deliveries;
    if (srv.redisPid) r.redisUsPerPublish = (rcpu * 1e6) / Math.max(1, done.ok);
    return r;
  } finally {
    for (const w of subs) if (w.connected) w.send({ type: "close" } satisfies ToSub);
    pub?.kill();
    await Promise.all(subs.map((w) => new Promise<void>((res) => (w.exitCode !== null ? res() : w.once("exit", () => res())))));
    await srv.stop();
    cleanup.delete(kill);
    cleanup.delete(stopSrv);
    if (profDir) {
      await sleep(200);
      const top = summarizeProfileDir(profDir, 15);
      if (top) console.log(`\n  cpu profile of ${target} in (${sc.id}), ${profDir}:\n${top}\n`);
      else console.log(`\n  (no .cpuprofile written in ${profDir}: the server must exit normally on SIGTERM)\n`);
    }
  }
}

// ---------- output ----------

const f = (n: number | undefined, d = 1): string => (n === undefined || Number.isNaN(n) ? "–" : n.toFixed(d));
const int = (n: number): string => Math.round(n).toLocaleString("en");

const COLS = ["scn", "target", "subs", "pub msg/s", "deliv/s", "p50 ms", "p99 ms", "max ms", "loss", "dup", "ooo", "srv CPU%", "µs/deliv", "redis µs/d", "µs/pub", "redis µs/pub", "wire B/deliv", "connect s (µs/conn)", "RSS MB", "B/idle conn", "gen CPU% subs/pub", "other CPU%"];

function row(r: Result): string[] {
  if (r.error && r.deliveries === 0 && r.rssPerConn === undefined) return [r.scenario, r.target + (r.variant ? ` ${r.variant}` : ""), int(r.subs), "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", `ERROR: ${r.error.split("\n")[0].slice(0, 100)}`];
  const idle = r.rssPerConn !== undefined;
  return [
    r.scenario,
    r.target + (r.variant ? ` ${r.variant}` : "") + (r.note ? "*" : ""),
    int(r.connected),
    idle ? "" : int(r.pubRate),
    idle ? "" : int(r.deliveriesPerSec),
    idle ? "" : f(r.p50Ms, 2),
    idle ? "" : f(r.p99Ms, 1),
    idle ? "" : f(r.maxMs, 0),
    idle ? "" : int(r.loss),
    idle ? "" : int(r.dup),
    idle ? "" : int(r.ooo),
    idle ? "" : f(r.serverCpuPct, 0),
    idle ? "" : f(r.usPerDelivery, 2),
    idle || r.redisUsPerDelivery === undefined ? "" : f(r.redisUsPerDelivery, 2),
    idle ? "" : f(r.usPerPublish, 1),
    idle || r.redisUsPerPublish === undefined ? "" : f(r.redisUsPerPublish, 1),
    r.wireBytesPerDelivery === undefined ? "" : int(r.wireBytesPerDelivery),
    r.usPerConnect === undefined ? "" : `${f(r.connectMs / 1000, 1)} (${f(r.usPerConnect, 0)})`,
    f(r.rssMb, 0),
    idle ? `${int(r.rssPerConn!)} (PSS ${int(r.pssPerConn!)})` : "",
    idle ? "" : `${r.subCpuPct.join("+")} / ${r.pubCpuPct}`,
    idle ? "" : f(r.otherCpuPct, 0),
  ];
}

function table(rows: string[][], md: boolean): string {
  const all = [COLS, ...rows];
  if (md) return all.map((r, i) => `| ${r.join(" | ")} |${i === 0 ? `\n|${r.map(() => "---").join("|")}|` : ""}`).join("\n");
  const w = COLS.map((_, c) => Math.max(...all.map((r) => (r[c] ?? "").length)));
  return all.map((r) => r.map((v, c) => (c < 2 ? v.padEnd(w[c]) : v.padStart(w[c]))).join("  ")).join("\n");
}

function ratios(results: Result[], md: boolean): string {
  const lines: string[][] = [["scn", "relay target", "vs", "CPU/deliv ratio", "CPU/pub ratio", "p99 ratio", "RSS/idle conn ratio"]];
  const get = (s: ScenarioId, t: TargetName): Result | undefined => results.find((r) => r.scenario === s && r.target === t && r.variant === undefined && !(r.error && r.deliveries === 0 && r.rssPerConn === undefined));
  for (const s of ["a", "b", "c", "d", "e", "p"] as ScenarioId[]) {
    // (z has its own table: gzip against plain)
    for (const [rel, peers] of [
      ["relay-memory", ["nchan-memory"]],
      ["relay-redis", ["nchan-redis", "nchan-memory"]],
      // what a Node developer would pick instead: Socket.IO on Redis (the Redis-backed relay is
      // its like; the embedded broker is shown too)
      ["relay-redis", ["socketio-redis"]],
      ["relay-memory", ["socketio-redis"]],
      // (p) only: the bare node:http floor under any Node publish endpoint
      ["relay-memory", ["node-floor"]],
      ["relay-redis", ["node-floor"]],
    ] as [TargetName, TargetName[]][]) {
      const a = get(s, rel);
      const b = peers.map((p) => get(s, p)).find(Boolean);
      if (!a || !b) continue;
      const ratio = (x: number | undefined, y: number | undefined): string => (x === undefined || y === undefined || !y || Number.isNaN(x) || Number.isNaN(y) ? "–" : `${(x / y).toFixed(2)}×`);
      lines.push([s, rel, b.target, ratio(a.usPerDelivery, b.usPerDelivery), ratio(a.usPerPublish, b.usPerPublish), ratio(a.p99Ms, b.p99Ms), ratio(a.rssPerConn, b.rssPerConn)]);
    }
  }
  for (const rel of ["relay-memory", "relay-redis"] as TargetName[]) {
    for (const size of ["100B", "10KB"]) {
      const plain = results.find((r) => r.scenario === "z" && r.target === rel && r.variant === size && r.deliveries > 0);
      const gz = results.find((r) => r.scenario === "z" && r.target === rel && r.variant === `${size} gzip` && r.deliveries > 0);
      if (!plain || !gz) continue;
      const ratio = (x: number | undefined, y: number | undefined): string => (x === undefined || y === undefined || !y ? "–" : `${(x / y).toFixed(2)}×`);
      lines.push(["z", `${rel} ${size} gzip`, `${rel} ${size}`, ratio(gz.usPerDelivery, plain.usPerDelivery), `wire ${ratio(gz.wireBytesPerDelivery, plain.wireBytesPerDelivery)}`, ratio(gz.p99Ms, plain.p99Ms), "–"]);
    }
  }
  if (lines.length === 1) return "(no relay/peer pairs to compare)";
  if (md) return lines.map((r, i) => `| ${r.join(" | ")} |${i === 0 ? `\n|${r.map(() => "---").join("|")}|` : ""}`).join("\n");
  const w = lines[0].map((_, c) => Math.max(...lines.map((r) => r[c].length)));
  return lines.map((r) => r.map((v, c) => v.padEnd(w[c])).join("  ")).join("\n");
}

async function main(): Promise<void> {
  if (process.argv[2] === "stalled") return runStalled(process.argv.slice(3));
  if (process.argv[2] === "scale") return runScale(process.argv.slice(3));
  const args = parseArgs(process.argv.slice(2));
  const m = machine();
  const date = new Date().toISOString();
  console.log(`edge-fanout bench — ${date}\nmachine: ${m.nproc} × ${m.cpu}, ${m.memGb} GB RAM, Linux ${m.kernel}, Node ${process.version}`);
  console.log(
    args.warmupMs > 0
      ? `warm-up: ${args.warmupMs} ms per run before measuring (the scenario's publishing, to channels nobody subscribes to; every target alike)`
      : "warm-up: none (--warmup 0): figures include the server's JIT warm-up",
  );
  let targets = args.targets;
  if (!relayPresent(args.root) && targets.some((t) => t.startsWith("relay"))) {
    console.log("relay/main.ts not found: skipping relay targets");
    targets = targets.filter((t) => !t.startsWith("relay"));
  }
  if (!nchanAvailable() && targets.some((t) => t.startsWith("nchan"))) {
    console.log("nginx/nchan not installed (apt-get install -y nginx libnginx-mod-nchan): skipping nchan targets");
    targets = targets.filter((t) => !t.startsWith("nchan"));
  }
  const all = scenarios(args.quick).filter((s) => args.scenarios.includes(s.id));
  for (const s of all) if (args.subs) s.subs = args.subs;
  const results: Result[] = [];
  for (const sc of all) {
    console.log(`\n(${sc.id}) ${sc.title}${args.quick ? " [quick]" : ""}`);
    const rows: string[][] = [];
    // Scenario z runs each target once per variant; Nchan (no compression here) plain ones only.
    // Targets that do not take part in this scenario say so (node-floor: p only; Socket.IO: not z).
    for (const t of targets) {
      const only = TARGET_SCENARIOS[t];
      if (only && !only.ids.includes(sc.id)) console.log(`  ${t.padEnd(13)} (not run: ${only.why})`);
    }
    const runs: Array<[TargetName, Variant | undefined]> = targets
      .filter((t) => TARGET_SCENARIOS[t]?.ids.includes(sc.id) ?? true)
      .flatMap((t): Array<[TargetName, Variant | undefined]> =>
        sc.variants ? sc.variants.filter((v) => !v.gzip || t.startsWith("relay")).map((v): [TargetName, Variant] => [t, v]) : [[t, undefined]],
      );
    for (const [t, variant] of runs) {
      let r: Result;
      try {
        r = await runOne(sc, t, args, variant);
      } catch (e) {
        r = { scenario: sc.id, target: t, variant: variant?.label, error: (e as Error).message } as Result;
        r.subs = sc.subs;
      }
      results.push(r);
      rows.push(row(r));
      const last = row(r);
      console.log(`  ${(t + (variant ? ` ${variant.label}` : "")).padEnd(13)} ${last.slice(2).map((v, i) => (v ? `${COLS[i + 2]}=${v}` : "")).filter(Boolean).join("  ")}`);
      if (r.error) console.log(`    ! ${r.error.split("\n").slice(0, 6).join("\n      ")}`);
      if (r.note) console.log(`    * ${r.note}`);
      if (t.startsWith("socketio") && r.loss > 0)
        console.log(`    ! the emitter gets no backpressure: the server took every emit; loss = deliveries not arrived by the end of the drain (≤ 20 s), still queued in the server (RSS); latency = queueing`);
      // Socket.IO's publisher gets no answer from the server: its RTT is Redis's PUBLISH reply
      // (open loop) or the emit coming back through the server to the probe (closed loop, c).
      const rtt = !t.startsWith("socketio") ? "request RTT" : sc.rate > 0 ? "Redis PUBLISH RTT" : "emit → probe RTT";
      if (r.pubElapsedMs !== undefined)
        console.log(`    publisher: ${int(r.published)} ok in ${int(r.pubElapsedMs)} ms${r.pubUnsent ? ` (${int(r.pubUnsent)} due but unsent: server behind)` : ""}, ${rtt} p50 ${f(r.pubRttP50Ms, 2)} ms max ${f(r.pubRttMaxMs, 0)} ms, max lag ${f(r.pubLagMs, 0)} ms; deliveries over ${f(r.wallS, 1)} s`);
    }
  }
  console.log(`\nResults (${date}, ${m.nproc} × ${m.cpu}; latency = publish request written → event parsed by the subscriber)\n`);
  console.log(table(results.map(row), false));
  console.log("\nrelay / Nchan, relay / Socket.IO, relay / node-floor (lower is better; < 1 = relay ahead)\n");
  console.log(ratios(results, false));
  if (args.markdown) {
    console.log("\n" + table(results.map(row), true) + "\n\n" + ratios(results, true));
  }
  const out = args.json ?? join(here, "results", `latest.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date, machine: m, node: process.version, args, results }, null, 2));
  console.log(`\nraw results: ${out}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
