/**
 * Publisher child process: keep-alive HTTP/1.1 over raw sockets, paced (or as fast as the
 * server answers). Channel i is always published on connection i % connections, and a
 * connection has at most `window` requests in flight (window 1 = no pipelining), so the
 * per-channel publish order is the order of the requests on one connection.
 *
 * Each message's data is `{"q":<seq>,"t":<µs CLOCK_MONOTONIC at write>,"k":<channel index>[,"p":"…"]}`.
 *
 * Warm-up (`{type: "warmup"}` before `go`): the same publishing, same pacing, same connections,
 * for `durationMs`, to `channels` of its own (bench/run.ts passes channels nobody subscribes
 * to), answered by a `done` that run.ts only checks for failures; then every counter starts
 * again from zero and `go` runs the measured window on the start message's channels.
 */
import { connect, type Socket } from "node:net";
import { nowUs } from "./sse-client.js";
import { PubPhases, RttSample } from "./pub-phases.js";

export interface PubChannel {
  /** Request path with the channel substituted (e.g. /v1/publish, /pub/b17). */
  path: string;
  /** Body template: `{data}` is replaced by the message data JSON. */
  body: string;
  key: number;
}

export type ToPub =
  | {
      type: "start";
      host: string;
      port: number;
      channels: PubChannel[];
      connections: number;
      window: number;
      /** Messages per second over all channels; 0 = as fast as the server answers. */
      rate: number;
      durationMs: number;
      contentType: string;
      payloadBytes: number;
      /** Pad with JSON records (what an application sends) instead of one repeated character. */
      payloadJson?: boolean;
    }
  | { type: "go" }
  /** Publish like `go` for `durationMs` to these channels (same count and order), then reset. */
  | { type: "warmup"; channels: PubChannel[]; durationMs: number };

export type FromPub =
  | { type: "ready" }
  | {
      type: "done";
      published: number[];
      sent: number;
      ok: number;
      failed: number;
      statuses: Record<string, number>;
      firstError?: string;
      elapsedMs: number;
      maxLagMs: number;
      cpuUs: number;
      rttP50Us: number;
      rttMaxUs: number;
      reconnects: number;
      /** Scheduled (open loop) but not written before the deadline: the server fell behind. */
      unsent: number;
    };

const send = (m: FromPub): void => {
  process.send!(m);
};

let cfg: Extract<ToPub, { type: "start" }>;

let payloadCache: string | undefined;

/**
 * About `bytes` of JSON shaped like application data (records with ids, names, prices, flags
 * and timestamps from a fixed pseudo-random sequence), made once: compresses like real
 * messages do, not like a run of one character.
 */
function jsonPayload(bytes: number): string {
  if (payloadCache !== undefined) return payloadCache;
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const words = ["alpha", "bravo", "delta", "echo", "kilo", "lima", "oscar", "sierra", "tango", "zulu"];
  const rows: unknown[] = [];
  let json = "[]";
  for (let i = 0; json.length < bytes; i++) {
    rows.push({
      id: 100000 + Math.floor(rnd() * 900000),
      name: `${words[Math.floor(rnd() * 10)]} ${words[Math.floor(rnd() * 10)]} ${Math.floor(rnd() * 1000)}`,
      price: Math.round(rnd() * 100000) / 100,
      qty: Math.floor(rnd() * 50),
      active: rnd() < 0.5,
      updated: 1764500000000 + Math.floor(rnd() * 1e9),
    });
    json = JSON.stringify(rows);
  }
  payloadCache = json;
  return json;
}

interface Inflight {
  idx: number;
  seq: number;
  t: number;
}

class PubConn {
  sock!: Socket;
  inflight: Inflight[] = []; // requests awaiting a response, in order
  queue: number[] = []; // channel indexes (into cfg.channels) scheduled but not written
  buf = "";
  need = -1; // body bytes still to skip (-1: reading headers)
  chunked = false;
  status = 0;
  closeAfter = false;
  reconnecting = false;
  connected!: Promise<void>;
  reconnects = 0;
  cursor = 0;
  constructor(
    readonly own: number[],
    readonly onResponse: (key: number, status: number, rttUs: number) => void,
    readonly onError: (why: string) => void,
  ) {
    this.open();
  }

  private open(): void {
    const sock = connect({ host: cfg.host, port: cfg.port });
    this.sock = sock;
    sock.setNoDelay(true);
    this.buf = "";
    this.need = -1;
    this.closeAfter = false;
    this.connected = new Promise((resolve, reject) => {
      sock.once("connect", () => resolve());
      sock.once("error", reject);
    });
    this.connected.catch(() => undefined);
    sock.on("data", (b: Buffer) => {
      if (sock === this.sock) this.onData(b.toString("latin1"));
    });
    sock.on("error", (e) => {
      if (sock === this.sock) this.onError(e.message);
    });
    sock.on("close", () => {
      if (sock === this.sock) this.reopen();
    });
  }

  /**
   * The server closed the keep-alive connection (nginx: keepalive_requests). Requests it never
   * answered were not processed: send them again, same sequence numbers, on a new connection.
   */
  private reopen(): void {
    if (this.reconnecting || doneSent) return;
    this.reconnecting = true;
    this.reconnects++;
    const again = this.inflight;
    this.inflight = [];
    this.sock.destroy();
    this.open();
    this.connected.then(
      () => {
        this.reconnecting = false;
        this.sock.cork();
        for (const r of again) this.write(r.idx, r.seq);
        this.sock.uncork();
        this.flush();
        if (finishing && this.inflight.length === 0) maybeDone();
      },
      (e: Error) => {
        this.reconnecting = false;
        firstError ??= `reconnect failed: ${e.message}`;
        failed += again.length;
        if (finishing) maybeDone();
      },
    );
  }

  write(idx: number, seq = ++seqs[idx]): void {
    const ch = cfg.channels[idx];
    const t = nowUs();
    let data = `{"q":${seq},"t":${t},"k":${ch.key}`;
    if (cfg.payloadJson && cfg.payloadBytes > 0) data += `,"p":${jsonPayload(cfg.payloadBytes - data.length - 6)}`;
    else if (cfg.payloadBytes > data.length + 1) data += `,"p":"${"x".repeat(Math.max(0, cfg.payloadBytes - data.length - 8))}"`;
    data += "}";
    const body = ch.body.replace("{data}", data);
    this.sock.write(
      `POST ${ch.path} HTTP/1.1\r\nHost: ${cfg.host}:${cfg.port}\r\nContent-Type: ${cfg.contentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    this.inflight.push({ idx, seq, t });
    sent++;
  }

  /** Next channel index to write: the paced queue, or (closed loop) this connection's next channel. */
  private next(): number | undefined {
    if (this.queue.length) return this.queue.shift();
    if (closedLoop && !stopped) return this.own[this.cursor++ % this.own.length];
    return undefined;
  }

  flush(): void {
    if (this.reconnecting || this.closeAfter || this.inflight.length >= cfg.window || this.sock.destroyed) return;
    this.sock.cork();
    while (this.inflight.length < cfg.window) {
      const idx = this.next();
      if (idx === undefined) break;
      this.write(idx);
    }
    this.sock.uncork();
  }

  private onData(s: string): void {
    this.buf += s;
    for (;;) {
      if (this.need < 0) {
        const end = this.buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = this.buf.slice(0, end);
        this.buf = this.buf.slice(end + 4);
        this.status = Number(head.slice(9, 12));
        const cl = /^content-length:\s*(\d+)/im.exec(head);
        this.chunked = !cl && /^transfer-encoding:\s*chunked/im.test(head);
        this.need = cl ? Number(cl[1]) : 0;
        if (/^connection:\s*close/im.test(head)) this.closeAfter = true;
      }
      if (this.chunked) {
        // skip chunks until the zero-size one (responses are tiny)
        const m = /^([0-9a-fA-F]+)[^\r]*\r\n/.exec(this.buf);
        if (!m) return;
        const size = parseInt(m[1], 16);
        if (this.buf.length < m[0].length + size + 2) return;
        this.buf = this.buf.slice(m[0].length + size + 2);
        if (size !== 0) continue;
      } else {
        if (this.buf.length < this.need) return; // latin1: chars = bytes
        this.buf = this.buf.slice(this.need);
      }
      this.need = -1;
      const r = this.inflight.shift()!;
      this.onResponse(cfg.channels[r.idx].key, this.status, nowUs() - r.t);
      if (this.closeAfter) {
        this.reopen();
        return;
      }
      this.flush();
      if (finishing && this.inflight.length === 0) maybeDone();
    }
  }
}

let seqs: number[] = [];
let published: number[] = [];
let sent = 0;
let ok = 0;
let failed = 0;
const statuses: Record<string, number> = {};
let firstError: string | undefined;
let conns: PubConn[] = [];
let finishing = false;
let startUs = 0;
let maxLagMs = 0;
let cpu0 = process.cpuUsage();
const rtts = new RttSample();
let doneSent = false;

function maybeDone(): void {
  if (doneSent) return;
  if (conns.some((c) => c.inflight.length > 0 || c.reconnecting)) return;
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
    elapsedMs: endUs ? (endUs - startUs) / 1000 : 0,
    maxLagMs,
    cpuUs: cpu.user + cpu.system,
    ...rtts.figures(),
    reconnects: conns.reduce((n, c) => n + c.reconnects, 0),
    unsent,
  });
}

let endUs = 0;
let unsent = 0;
let closedLoop = false;
let stopped = false;

async function start(): Promise<void> {
  const n = Math.max(1, Math.min(cfg.connections, cfg.channels.length));
  seqs = cfg.channels.map(() => 0);
  published = [];
  for (const ch of cfg.channels) published[ch.key] = 0;
  for (let i = 0; i < n; i++) {
    const own: number[] = [];
    for (let j = i; j < cfg.channels.length; j += n) own.push(j);
    conns.push(
      new PubConn(
        own,
        (key, status, rtt) => {
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status >= 200 && status < 300) {
            ok++;
            published[key]++;
          } else {
            failed++;
            firstError ??= `HTTP ${status}`;
          }
          rtts.add(rtt);
        },
        (why) => {
          firstError ??= why;
        },
      ),
    );
  }
  await Promise.all(conns.map((c) => c.connected));
  send({ type: "ready" });
}

const phases = new PubPhases({
  channels: () => cfg.channels,
  setChannels: (channels) => (cfg.channels = channels),
  reset,
  go,
});

/** Every counter back to zero (after a warm-up): the measured window starts clean. */
function reset(): void {
  seqs = cfg.channels.map(() => 0);
  published = [];
  for (const ch of cfg.channels) published[ch.key] = 0;
  sent = ok = failed = 0;
  for (const k of Object.keys(statuses)) delete statuses[k];
  firstError = undefined;
  finishing = doneSent = closedLoop = stopped = false;
  startUs = endUs = maxLagMs = unsent = 0;
  rtts.clear();
  for (const c of conns) {
    c.queue = [];
    c.cursor = 0;
    c.reconnects = 0;
  }
}

function go(durationMs = cfg.durationMs): void {
  cpu0 = process.cpuUsage();
  startUs = nowUs();
  const durUs = durationMs * 1000;
  if (cfg.rate <= 0) {
    // closed loop: every connection keeps its window full (refilled on each response),
    // round-robin over its channels, until the duration is over
    closedLoop = true;
    setTimeout(() => {
      stopped = true;
      endUs = nowUs();
      finishing = true;
      maybeDone();
    }, durationMs);
    for (const c of conns) c.flush();
    return;
  }
  // open loop: message m is due at startUs + m / rate; channels round-robin
  let scheduled = 0;
  const nch = cfg.channels.length;
  const tick = (): void => {
    const now = nowUs();
    const elapsed = Math.min(now - startUs, durUs);
    const due = Math.floor((elapsed * cfg.rate) / 1e6);
    const touched = new Set<PubConn>();
    while (scheduled < due) {
      const idx = scheduled % nch;
      const c = conns[idx % conns.length];
      c.queue.push(idx);
      touched.add(c);
      scheduled++;
    }
    for (const c of touched) c.flush();
    // lag: how late the oldest queued message is
    let q = 0;
    for (const c of conns) q = Math.max(q, c.queue.length);
    if (q > 0) maxLagMs = Math.max(maxLagMs, (q / (cfg.rate / conns.length)) * 1000);
    if (now - startUs >= durUs) {
      // time is up: what the server did not take by now is not sent (reported as unsent), so
      // a saturated server cannot stretch the run; wait for the answers in flight
      for (const c of conns) {
        unsent += c.queue.length;
        c.queue = [];
      }
      endUs = nowUs();
      finishing = true;
      maybeDone();
      return;
    }
    setTimeout(tick, 1);
  };
  tick();
}

process.on("message", (m: ToPub) => {
  if (m.type === "start") {
    cfg = m;
    start().catch((e: Error) => {
      firstError = e.message;
      console.error(`publisher: ${e.message}`);
      process.exit(1);
    });
  } else if (m.type === "warmup") phases.warmup(m.channels, m.durationMs);
  else if (m.type === "go") phases.go();
});
process.on("disconnect", () => process.exit(0));
