/**
 * The servers a benchmark runs against, each started fresh for one scenario and stopped after:
 * the relay (embedded broker or Redis), Nchan (nginx + libnginx-mod-nchan, memory or Redis
 * storage), Socket.IO with the Redis adapter (bench/socketio-server.ts) and, for the publish
 * path alone, a bare node:http endpoint (bench/node-floor.ts), plus the URL templates (or
 * rooms) and the load-generator workers each is driven with.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { alive, freePort, sleep, waitForPort } from "./proc.js";

/** This checkout (where bench/ lives). */
const benchRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export type TargetName = "relay-memory" | "relay-redis" | "nchan-memory" | "nchan-redis" | "socketio-redis" | "node-floor";
export const TARGETS: TargetName[] = ["relay-memory", "relay-redis", "nchan-memory", "nchan-redis", "socketio-redis", "node-floor"];

/**
 * Scenarios a target takes part in, and why not the others (targets not listed: all).
 * node-floor has no subscriptions; Socket.IO has no compressed streams to compare in (z).
 */
export const TARGET_SCENARIOS: Partial<Record<TargetName, { ids: string; why: string }>> = {
  "node-floor": { ids: "p", why: "a publish endpoint only (no subscriptions): scenario p" },
  "socketio-redis": { ids: "abcdep", why: "(z) compares the relay's gzip streams: no Socket.IO row" },
};

export interface Running {
  name: TargetName;
  host: string;
  port: number;
  /** Root pid of the server (relay node process, nginx master): CPU/RSS are summed over its tree. */
  pid: number;
  /** redis-server pid when the target uses Redis (its CPU is reported separately). */
  redisPid?: number;
  /** SSE path for an exact channel. */
  subChannel(channel: string): string;
  /** SSE path for a glob pattern, or undefined when the server has no pattern subscriptions. */
  subPattern(pattern: string): string | undefined;
  /** Publish request path for a channel. */
  pubPath(channel: string): string;
  /** Publish body template for a channel (`{data}` → message data JSON). */
  pubBody(channel: string): string;
  contentType: string;
  /** SSE event that marks a subscription live (null: the 200 response does). */
  readyEvent: string | null;
  /** Load-generator workers in bench/ (default: sub-worker.ts / pub-worker.ts, HTTP + SSE). */
  subWorker?: string;
  pubWorker?: string;
  /** Redis the publisher writes to (socketio-redis: the emitter publishes there, not to the server). */
  redisUrl?: string;
  stop(): Promise<void>;
  log(): string;
}

export interface StartOptions {
  repoRoot: string;
  /** Extra node flags for the relay, Socket.IO or node-floor process (e.g. --cpu-prof --cpu-prof-dir=…). */
  relayNodeArgs?: string[];
  relayEnv?: Record<string, string>;
  nginxWorkers?: number;
}

/** Runs `cmd` in bash with the open-file limit raised to the hard limit first. */
function spawnWithNofile(cmd: string, args: string[], opts: Parameters<typeof spawn>[2]): ChildProcess {
  return spawn("bash", ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', "bash", cmd, ...args], opts);
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", graceMs = 8000): Promise<void> {
  const pid = child.pid;
  if (!pid || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const t = sleep(graceMs).then(() => "timeout" as const);
  if ((await Promise.race([exited.then(() => "ok" as const), t])) === "timeout") {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
    await exited;
  }
}

function captureLog(child: ChildProcess): () => string {
  let log = "";
  const add = (b: Buffer): void => {
    log += b.toString();
    if (log.length > 20000) log = log.slice(-10000);
  };
  child.stdout?.on("data", add);
  child.stderr?.on("data", add);
  return () => log;
}

export async function startRedis(): Promise<{ port: number; pid: number; stop(): Promise<void>; log(): string }> {
  const port = await freePort();
  if (port === 6379) throw new Error("refusing to use 6379 for the bench");
  const child = spawnWithNofile("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxclients", "10000"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = captureLog(child);
  await waitForPort(port, 10000, "127.0.0.1", () => child.exitCode === null).catch((e: Error) => {
    throw new Error(`redis-server: ${e.message}\n${log()}`);
  });
  return { port, pid: child.pid!, stop: () => stopChild(child, "SIGTERM", 3000), log };
}

export function relayPresent(repoRoot: string): boolean {
  return existsSync(join(repoRoot, "relay", "main.ts"));
}

async function startRelay(name: TargetName, o: StartOptions): Promise<Running> {
  if (!relayPresent(o.repoRoot)) throw new Error("relay/main.ts does not exist yet");
  const redis = name === "relay-redis" ? await startRedis() : undefined;
  // Every benchmark subscriber connects from loopback: lift the per-address stream limit
  // (a few hundred by default) unless the caller sets it.
  // `node --import tsx` = what `npx tsx relay/main.ts` runs, as one process (pid = the relay)
  const srv = await startNodeProcess({
    what: "relay",
    cwd: o.repoRoot,
    script: "relay/main.ts",
    nodeArgs: o.relayNodeArgs ?? [],
    defaults: { FANOUT_MAX_CONNECTIONS_PER_IP: "1000000" },
    env: o.relayEnv,
    redis,
    stopGraceMs: 10000,
  });
  return {
    name,
    host: "127.0.0.1",
    port: srv.port,
    pid: srv.pid,
    redisPid: redis?.pid,
    subChannel: (c) => `/v1/events?channel=${encodeURIComponent(c)}`,
    subPattern: (p) => `/v1/events?pattern=${encodeURIComponent(p)}`,
    pubPath: () => "/v1/publish",
    pubBody: (c) => `{"channel":${JSON.stringify(c)},"data":{data}}`,
    contentType: "application/json",
    readyEvent: "ready",
    log: srv.log,
    stop: srv.stop,
  };
}

export function nchanAvailable(): boolean {
  return existsSync("/usr/lib/nginx/modules/ngx_nchan_module.so") && spawnSync("nginx", ["-v"]).status === 0;
}

function nchanConfig(port: number, redisPort: number | undefined): string {
  const user = process.getuid?.() === 0 ? "user root;\n" : "";
  const redisUpstream = redisPort ? `  upstream bench_redis { nchan_redis_server redis://127.0.0.1:${redisPort}; }\n` : "";
  const redisPass = redisPort ? "    nchan_redis_pass bench_redis;\n" : "";
  // Nchan's usual pub/sub setup (one publisher and one subscriber location per channel; the
  // Redis variant adds nchan_redis_pass), with ports chosen free and paths in a temp prefix.
  return `load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
${user}worker_rlimit_nofile 19000;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 16384; }

http {
  access_log off;
  keepalive_requests 1000000;        # bench only: the publisher's keep-alive connection is not recycled every 1,000 requests
  client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
  uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
  nchan_shared_memory_size 256m;
${redisUpstream}
  server {
    listen 127.0.0.1:${port} backlog=4096;
${redisPass}    nchan_message_buffer_length 100;
    nchan_message_timeout 5m;

    location ~ ^/pub/(\\w+)$ { nchan_publisher; nchan_channel_id $1; }
    location ~ ^/sub/(\\w+)$ { nchan_subscriber eventsource; nchan_channel_id $1; nchan_subscriber_first_message newest; }
    location = /publish { nchan_publisher; nchan_channel_id $arg_channel; }
    location = /events  { nchan_subscriber eventsource; nchan_channel_id $arg_channel; nchan_subscriber_first_message newest; }
  }
}
`;
}

async function startNchan(name: TargetName, o: StartOptions): Promise<Running> {
  if (!nchanAvailable()) throw new Error("nginx + libnginx-mod-nchan not installed (apt-get install -y nginx libnginx-mod-nchan)");
  const redis = name === "nchan-redis" ? await startRedis() : undefined;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
  mkdirSync(join(dir, "tmp"), { recursive: true });
  const conf = join(dir, "nginx.conf");
  writeFileSync(conf, nchanConfig(port, redis?.port));
  const child = spawnWithNofile("nginx", ["-p", dir, "-e", join(dir, "error.log"), "-c", conf, "-g", `daemon off; worker_processes ${o.nginxWorkers ?? 2};`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = captureLog(child);
  const log = (): string => {
    let s = out();
    try {
      s += readFileSync(join(dir, "error.log"), "utf8").slice(-4000);
    } catch {
      /* none */
    }
    return s;
  };
  try {
    await waitForPort(port, 10000, "127.0.0.1", () => child.exitCode === null);
  } catch (e) {
    await stopChild(child, "SIGKILL");
    await redis?.stop();
    throw new Error(`nginx did not start: ${(e as Error).message}\n${log()}`);
  }
  return {
    name,
    host: "127.0.0.1",
    port,
    pid: child.pid!,
    redisPid: redis?.pid,
    subChannel: (c) => `/sub/${c}`,
    subPattern: () => undefined,
    pubPath: (c) => `/pub/${c}`,
    pubBody: () => "{data}",
    contentType: "application/json",
    readyEvent: null,
    log,
    async stop() {
      // SIGQUIT = graceful shutdown; SIGTERM = fast. Fast is fine: nothing to keep.
      await stopChild(child, "SIGTERM", 5000);
      if (alive(child.pid!)) process.kill(child.pid!, "SIGKILL");
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A one-process Node server (`node --import tsx <script>` in `cwd`) on a free port (`PORT`),
 * with `REDIS_URL` pointing at `redis` or unset; `stop()` stops both. Environment: `defaults`,
 * then this process's, then `env`.
 */
async function startNodeProcess(o: {
  what: string;
  cwd: string;
  script: string;
  nodeArgs: string[];
  defaults?: Record<string, string>;
  env?: Record<string, string>;
  redis?: Awaited<ReturnType<typeof startRedis>>;
  stopGraceMs?: number;
}): Promise<{ pid: number; port: number; log(): string; stop(): Promise<void> }> {
  const port = await freePort();
  const env: Record<string, string> = { ...o.defaults, ...(process.env as Record<string, string>), PORT: String(port), ...o.env };
  delete env.REDIS_URL;
  if (o.redis) env.REDIS_URL = `redis://127.0.0.1:${o.redis.port}`;
  const child = spawnWithNofile(process.execPath, [...o.nodeArgs, "--import", "tsx", o.script], { cwd: o.cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  const log = captureLog(child);
  try {
    await waitForPort(port, 30000, "127.0.0.1", () => child.exitCode === null);
  } catch (e) {
    await stopChild(child, "SIGKILL");
    await o.redis?.stop();
    throw new Error(`${o.what} did not start: ${(e as Error).message}\n${log().slice(-2000)}`);
  }
  return {
    pid: child.pid!,
    port,
    log,
    async stop() {
      await stopChild(child, "SIGTERM", o.stopGraceMs ?? 5000);
      await o.redis?.stop();
    },
  };
}

/** A peer server from this checkout's bench/: `--root` (another checkout's relay) does not move it. */
function startNodeScript(script: string, nodeArgs: string[], redis?: Awaited<ReturnType<typeof startRedis>>): ReturnType<typeof startNodeProcess> {
  return startNodeProcess({ what: script, cwd: benchRoot, script: join("bench", script), nodeArgs, redis });
}

/**
 * Socket.IO 4.8 + @socket.io/redis-adapter on its own redis-server; subscribers are
 * socket.io-client sockets in a room per channel, the publisher an @socket.io/redis-emitter.
 * Rooms are exact names: no patterns (scenario e runs on exact channels, like Nchan).
 */
async function startSocketIo(o: StartOptions): Promise<Running> {
  const redis = await startRedis();
  const srv = await startNodeScript("socketio-server.ts", o.relayNodeArgs ?? [], redis);
  return {
    name: "socketio-redis",
    host: "127.0.0.1",
    port: srv.port,
    pid: srv.pid,
    redisPid: redis.pid,
    redisUrl: `redis://127.0.0.1:${redis.port}`,
    subChannel: (c) => c,
    subPattern: () => undefined,
    pubPath: (c) => c,
    pubBody: () => "{data}",
    contentType: "application/json",
    readyEvent: "ready",
    subWorker: "socketio-sub-worker.ts",
    pubWorker: "socketio-pub-worker.ts",
    log: srv.log,
    stop: srv.stop,
  };
}

/** A bare node:http publish endpoint answering the relay's JSON (scenario p only). */
async function startNodeFloor(o: StartOptions): Promise<Running> {
  const srv = await startNodeScript("node-floor.ts", o.relayNodeArgs ?? []);
  const none = (): string => {
    throw new Error("node-floor has no subscriptions (scenario p only)");
  };
  return {
    name: "node-floor",
    host: "127.0.0.1",
    port: srv.port,
    pid: srv.pid,
    subChannel: none,
    subPattern: () => undefined,
    pubPath: () => "/v1/publish",
    pubBody: (c) => `{"channel":${JSON.stringify(c)},"data":{data}}`,
    contentType: "application/json",
    readyEvent: null,
    log: srv.log,
    stop: srv.stop,
  };
}

export function startTarget(name: TargetName, o: StartOptions): Promise<Running> {
  if (name === "socketio-redis") return startSocketIo(o);
  if (name === "node-floor") return startNodeFloor(o);
  return name.startsWith("relay") ? startRelay(name, o) : startNchan(name, o);
}

export const repoRootFrom = (here: string): string => resolve(here, "..");
