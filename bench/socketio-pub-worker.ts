/**
 * Publisher child process for the `socketio-redis` target: the same IPC protocol as
 * bench/pub-worker.ts, but each message is `emitter.to(channel).emit("message", data)` on an
 * `@socket.io/redis-emitter` — how a Node backend publishes to a Socket.IO fleet from outside
 * it. The data is the object `{q, t, k}` (pub-worker's shape; `t` = µs CLOCK_MONOTONIC when the
 * emit is written to Redis), so the subscribers measure latency, loss, dups and order alike.
 *
 * A message counts as published when Redis answers its PUBLISH (the emitter drops that reply:
 * the client's `publish` is wrapped to keep it). Open loop: paced like pub-worker, never
 * behind (nothing answers but Redis, so nothing is "unsent"). Closed loop (rate 0): Socket.IO
 * sends the publisher no answer, so a probe client per publisher connection joins that
 * connection's channels and the next emit goes out when the previous one came back through
 * the server (window 1 = one in flight per connection) — the probe is one more member of
 * each room. Driven over IPC by bench/run.ts; never started by hand.
 *
 * Warm-up (`{type: "warmup"}`, as in pub-worker): the same emits to rooms nobody joined
 * (`warmupRooms` of the start message); in closed loop the probes join those rooms too, so
 * they pace the warm-up as they pace the measured window.
 */
import { Emitter } from "@socket.io/redis-emitter";
import { Redis } from "ioredis";
import { io, type Socket } from "socket.io-client";
import type { FromPub, ToPub } from "./pub-worker.js";
import { nowUs } from "./sse-client.js";
import { PubPhases, RttSample } from "./pub-phases.js";

/**
 * pub-worker's start message plus the Redis the emitter publishes to, and the warm-up's rooms
 * (the probes join them at start). Channel `path` = room.
 */
export type ToSioPub = (Extract<ToPub, { type: "start" }> & { redisUrl: string; warmupRooms?: string[] }) | Exclude<ToPub, { type: "start" }>;

const send = (m: FromPub): void => {
  process.send!(m);
};

let cfg: Extract<ToSioPub, { type: "start" }>;
let redis: Redis;
let emitter: Emitter;
/** The promise of the PUBLISH the emitter just issued (it discards it). */
let lastPublish: Promise<unknown> | undefined;

let seqs: number[] = [];
let published: number[] = [];
let sent = 0;
let ok = 0;
let failed = 0;
let pending = 0;
const statuses: Record<string, number> = {};
let firstError: string | undefined;
let startUs = 0;
let endUs = 0;
let maxLagMs = 0;
let cpu0 = process.cpuUsage();
const rtts = new RttSample();
let finishing = false;
let doneSent = false;
let giveUp: NodeJS.Timeout | undefined;

interface Probe {
  s: Socket;
  own: number[];
  cursor: number;
  inflight: number;
}
let probes: Probe[] = [];
let stopped = false;

function emit(idx: number): void {
  const ch = cfg.channels[idx];
  const seq = ++seqs[idx];
  const t = nowUs();
  const data: { q: number; t: number; k: number; p?: string } = { q: seq, t, k: ch.key };
  if (cfg.payloadBytes > 40) data.p = "x".repeat(cfg.payloadBytes - 40);
  lastPublish = undefined;
  emitter.to(ch.path).emit("message", data);
  sent++;
  const p = lastPublish as Promise<unknown> | undefined;
  if (!p) throw new Error("the emitter did not call redis.publish");
  pending++;
  p.then(
    () => {
      pending--;
      ok++;
      published[ch.key]++;
      statuses["redis ok"] = (statuses["redis ok"] ?? 0) + 1;
      if (!probes.length) rtts.add(nowUs() - t);
      if (finishing) maybeDone();
    },
    (e: Error) => {
      pending--;
      failed++;
      statuses["redis error"] = (statuses["redis error"] ?? 0) + 1;
      firstError ??= e.message;
      if (finishing) maybeDone();
    },
  );
}

function maybeDone(): void {
  if (doneSent || pending > 0 || probes.some((p) => p.inflight > 0)) return;
  doneSent = true;
  const cpu = process.cpuUsage(cpu0);
  send({
    type: "done",
    published,
    sent,
    ok,
    failed,
    statuses,
    firstError,
    elapsedMs: (endUs - startUs) / 1000,
    maxLagMs,
    cpuUs: cpu.user + cpu.system,
    ...rtts.figures(),
    reconnects: 0,
    unsent: 0,
  });
}

function finish(): void {
  endUs = nowUs();
  finishing = true;
  maybeDone();
  // a message the server lost would hold a probe forever: give up on it after 10 s
  giveUp = setTimeout(() => {
    for (const p of probes) p.inflight = 0;
    maybeDone();
  }, 10000).unref();
}

const phases = new PubPhases({
  channels: () => cfg.channels,
  setChannels: (channels) => (cfg.channels = channels),
  reset,
  go,
});

/** Every counter back to zero (after a warm-up): the measured window starts clean. */
function reset(): void {
  clearTimeout(giveUp);
  seqs = cfg.channels.map(() => 0);
  published = [];
  for (const ch of cfg.channels) published[ch.key] = 0;
  sent = ok = failed = pending = 0;
  for (const k of Object.keys(statuses)) delete statuses[k];
  firstError = undefined;
  finishing = doneSent = stopped = false;
  startUs = endUs = maxLagMs = 0;
  rtts.clear();
  for (const p of probes) {
    p.cursor = 0;
    p.inflight = 0;
  }
}

function flushProbe(p: Probe): void {
  while (!stopped && p.inflight < cfg.window) {
    p.inflight++;
    emit(p.own[p.cursor++ % p.own.length]);
  }
}

async function start(): Promise<void> {
  redis = new Redis(cfg.redisUrl);
  const publish = redis.publish.bind(redis) as (channel: string, message: Buffer | string) => Promise<number>;
  (redis as unknown as { publish: typeof publish }).publish = (channel, message) => (lastPublish = publish(channel, message));
  emitter = new Emitter(redis);
  await redis.ping();
  seqs = cfg.channels.map(() => 0);
  published = [];
  for (const ch of cfg.channels) published[ch.key] = 0;
  if (cfg.rate <= 0) {
    const n = Math.max(1, Math.min(cfg.connections, cfg.channels.length));
    for (let i = 0; i < n; i++) {
      const own: number[] = [];
      for (let j = i; j < cfg.channels.length; j += n) own.push(j);
      const s = io(`http://${cfg.host}:${cfg.port}`, { transports: ["websocket"], forceNew: true, reconnection: false, auth: { channels: own.flatMap((j) => [cfg.channels[j].path, ...(cfg.warmupRooms?.[j] !== undefined ? [cfg.warmupRooms[j]] : [])]) } });
      const p: Probe = { s, own, cursor: 0, inflight: 0 };
      s.on("message", (d: { t?: number }) => {
        if (p.inflight === 0) return;
        p.inflight--;
        if (typeof d?.t === "number") rtts.add(nowUs() - d.t);
        if (finishing) maybeDone();
        else flushProbe(p);
      });
      probes.push(p);
      await new Promise<void>((resolve, reject) => {
        s.once("ready", () => resolve());
        s.once("connect_error", (e: Error) => reject(new Error(`probe: ${e.message}`)));
      });
    }
  }
  send({ type: "ready" });
}

function go(durationMs = cfg.durationMs): void {
  cpu0 = process.cpuUsage();
  startUs = nowUs();
  if (cfg.rate <= 0) {
    setTimeout(() => {
      stopped = true;
      finish();
    }, durationMs);
    for (const p of probes) flushProbe(p);
    return;
  }
  // open loop: message m is due at startUs + m / rate; channels round-robin
  const durUs = durationMs * 1000;
  const nch = cfg.channels.length;
  let scheduled = 0;
  const tick = (): void => {
    const now = nowUs();
    const elapsed = Math.min(now - startUs, durUs);
    const due = Math.floor((elapsed * cfg.rate) / 1e6);
    if (scheduled < due) maxLagMs = Math.max(maxLagMs, (now - startUs - (scheduled * 1e6) / cfg.rate) / 1000);
    while (scheduled < due) emit(scheduled++ % nch);
    if (now - startUs >= durUs) return finish();
    setTimeout(tick, 1);
  };
  tick();
}

process.on("message", (m: ToSioPub) => {
  if (m.type === "start") {
    cfg = m;
    start().catch((e: Error) => {
      console.error(`socket.io publisher: ${e.message}`);
      process.exit(1);
    });
  } else if (m.type === "warmup") phases.warmup(m.channels, m.durationMs);
  else if (m.type === "go") phases.go();
});
process.on("disconnect", () => process.exit(0));
