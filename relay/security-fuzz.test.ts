import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { SseClient, publish } from "../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";
import { signFanoutToken } from "../protocol/auth/sign-token.js";
import { prng as rng } from "../test/support/prng.js";
import { RawConnection } from "../test/support/raw-http.js";

const SECRET = "fuzz-secret-0123456789abcdef0123456789";
const KEY = "pk-fuzz";
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
const BUDGET_MS = 2500;
/** Requests the HTTP-level fuzz sends at least, however slow the machine (then more until the budget ends). */
const MIN_REQUESTS = 150;
const modes = brokerModes();


function fuzzer(seed: number) {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
  const interesting = ["", "*", "?", "[", "]", "\\", "[^", "a-", "%", "%ff", "%zz", "\u0000", "\n", "\r\n", "é", "😀", "\ud800", "public:", "fuzz:steady", "{", "}", '"', "0-0", "-1", "9".repeat(30)];
  const str = (max: number): string => {
    let s = "";
    const n = int(max);
    for (let i = 0; i < n; i++) s += r() < 0.3 ? pick(interesting) : String.fromCharCode(r() < 0.8 ? 32 + int(95) : int(0x3000));
    return s;
  };
  const json = (depth: number): unknown => {
    switch (int(depth > 3 ? 5 : 8)) {
      case 0: return null;
      case 1: return r() < 0.5;
      case 2: return pick([0, -1, 1e308, -0, 2 ** 53 + 1, 1.5]);
      case 3: case 4: return str(40);
      case 5: return Array.from({ length: int(5) }, () => json(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        const keys = ["channel", "data", "type", "id", "messages", "channels", "patterns", "ttl", "__proto__", "constructor", str(8)];
        for (let i = int(5); i > 0; i--) o[pick(keys)] = json(depth + 1);
        return o;
      }
    }
  };
  /** Header-safe text: Node's client refuses control characters in header values. */
  const headerValue = (max: number) => Array.from({ length: int(max) }, () => String.fromCharCode(r() < 0.9 ? 32 + int(95) : 0x80 + int(0x80))).join("");
  const queryPart = () => {
    const name = pick(["channel", "pattern", "token", "ticket", "lastEventId", "channel", "pattern", str(6)]);
    const raw = r() < 0.5 ? encodeURIComponent(str(30).replace(/[\ud800-\udfff]/g, "x")) : Array.from(bytes(int(20)), (b) => (r() < 0.5 ? `%${b.toString(16).padStart(2, "0")}` : pick(["%", "%z", "+", "&", "=", "a", "*", ";"]))).join("");
    return `${encodeURIComponent(name.replace(/[\ud800-\udfff]/g, "x"))}=${raw}`;
  };
  return { r, int, pick, bytes, str, json, headerValue, queryPart };
}

interface RawResult {
  status: number;
  body: string;
}

/** One HTTP exchange; an SSE 200 is read for a moment then dropped. */
function raw(base: string, method: string, path: string, headers: Record<string, string>, body?: Uint8Array | string): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      if ((res.headers["content-type"] ?? "").startsWith("text/event-stream")) {
        setTimeout(() => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, body: text });
        }, 5);
      } else {
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      }
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe.each(modes)("security fuzz on the $name", (mode) => {
  let r: RunningRelay;
  afterEach(async () => {
    await r?.stop();
  });

  it("answers random publish bodies, subscribe queries, headers and cursors with 2xx/4xx only, while another client keeps receiving", async () => {
    r = await startRelay({
      ...mode.env(),
      FANOUT_JWT_SECRET: SECRET,
      FANOUT_PUBLISH_KEYS: KEY,
      FANOUT_PUBLIC_CHANNELS: "public:*",
      FANOUT_CORS_ORIGINS: "https://app.example",
      FANOUT_MAX_BODY_BYTES: "4096",
      FANOUT_PUBLISH_RATE: "100000",
      FANOUT_PRESENCE_CHANNELS: "public:*",
    });
    const subToken = await signFanoutToken(SECRET, { subscribe: ["fuzz:*", "public:*"], publish: ["public:*", "fuzz:other"] });
    const steady = await SseClient.open(`${r.base}/v1/events?channel=fuzz:steady`, { Authorization: `Bearer ${subToken}` });
    await steady.waitReady();
    // A stream whose subscriptions the fuzz changes (never the steady one's).
    const victim = await SseClient.open(`${r.base}/v1/events?channel=public:v`);
    await victim.waitReady();
    const { connection: victimId, secret: victimSecret } = JSON.parse(victim.events[0].data) as { connection: string; secret: string };

    // The steady publisher: one message every 20 ms for the whole run.
    let sent = 0;
    let stop = false;
    const publisher = (async () => {
      while (!stop) {
        const res = await publish(r.base, { channel: "fuzz:steady", data: sent }, { Authorization: `Bearer ${KEY}` });
        expect(res.status).toBe(200);
        sent++;
        await new Promise((res) => setTimeout(res, 20));
      }
    })();

    const f = fuzzer(SEED + (mode.name === "memory broker" ? 0 : 1));
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    const validTicket = async () => (await (await fetch(`${r.base}/v1/tickets`, { method: "POST", headers: { Authorization: `Bearer ${KEY}` }, body: JSON.stringify({ channels: ["public:a", "fuzz:x"] }) })).json()).ticket as string;
    const authHeaders = async (): Promise<Record<string, string>> => {
      const h: Record<string, string> = {};
      const k = f.int(8);
      if (k === 0) h.Authorization = `Bearer ${KEY}`;
      else if (k === 1) h.Authorization = `Bearer ${subToken}`;
      else if (k === 2) h.Authorization = f.headerValue(80);
      else if (k === 3) h.Authorization = `Bearer ${subToken.slice(0, -2)}${f.str(2).replace(/[^A-Za-z0-9]/g, "A")}`;
      else if (k === 4) h.Cookie = f.pick([`fanout_token=${subToken}`, `fanout_token=${f.headerValue(40)}`, f.headerValue(60), "fanout_token=%ff%"]);
      if (f.r() < 0.3) h.Origin = f.pick(["https://app.example", "https://evil.example", f.headerValue(30)]);
      if (f.r() < 0.5) h["Last-Event-ID"] = f.pick([f.headerValue(60), "0-0", "1:2-3", `${f.int(1e9)}-${f.int(1e9)}`, "ff".repeat(40), steady.lastEventId ?? ""]);
      if (f.r() < 0.2) h[f.pick(["Content-Type", "Accept", "X-Forwarded-For", "Accept-Encoding"])] = f.headerValue(40);
      return h;
    };

    const deadline = Date.now() + BUDGET_MS;
    let n = 0;
    try {
      while (Date.now() < deadline || n < MIN_REQUESTS) {
        n++;
        const kind = f.int(7);
        let method = "POST";
        let path = "/v1/publish";
        let body: Uint8Array | string | undefined;
        const headers = await authHeaders();
        if (kind === 0) body = f.bytes(f.int(600));
        else if (kind === 1 && f.r() < 0.5) body = JSON.stringify(f.json(0)) ?? "null";
      else if (kind === 1) {
        // Nearly valid: a real shape with random channels, data and fields.
        const msg = () => ({ channel: f.pick(["public:x", "fuzz:other", "fuzz:steady2", f.str(20)]), data: f.json(1), ...(f.r() < 0.3 ? { type: f.str(10) } : {}), ...(f.r() < 0.3 ? { id: f.str(10) } : {}) });
        body = JSON.stringify(f.r() < 0.3 ? { messages: Array.from({ length: f.int(4) }, msg) } : msg());
      }
        else if (kind === 2) {
          path = "/v1/tickets";
          body = JSON.stringify(f.json(0)) ?? "null";
        } else if (kind === 5) {
          // Dynamic subscriptions: random or nearly valid changes, to the victim or a made-up id.
          path = `/v1/connections/${f.pick([victimId, victimId, `${victimId.split("~")[0]}~${f.str(8)}`, encodeURIComponent(f.str(20).replace(/[\ud800-\udfff]/g, "x")), "r-x~y"])}/subscriptions`;
          const names = () => Array.from({ length: f.int(4) }, () => f.pick(["public:a", "fuzz:x", "fuzz:steady2", f.str(20), "public:*", "*", f.str(6) + "*"]));
          body = f.r() < 0.3 ? (JSON.stringify(f.json(0)) ?? "null") : JSON.stringify({ secret: f.r() < 0.8 ? victimSecret : f.str(30), ...(f.r() < 0.7 ? { add: { channels: names(), patterns: names() } } : {}), ...(f.r() < 0.5 ? { remove: { channels: names() } } : {}), ...(f.r() < 0.2 ? { since: f.pick([steady.lastEventId ?? "", f.str(12), "0_0_0_0"]) } : {}), ...(f.r() < 0.2 ? { request: f.str(10) } : {}) });
        } else if (kind === 6) {
          method = "GET";
          const seg = f.r() < 0.5 ? encodeURIComponent(`public:${f.str(10).replace(/[\ud800-\udfff]/g, "x")}`) : Array.from(f.bytes(f.int(12)), (b) => (f.r() < 0.5 ? `%${b.toString(16).padStart(2, "0")}` : f.pick(["%", "a", ":", "*"]))).join("");
          path = `/v1/presence/${seg || "x"}${f.r() < 0.3 ? "?stats=1" : ""}`;
        } else {
          method = f.r() < 0.1 ? "OPTIONS" : "GET";
          const parts = Array.from({ length: f.int(6) }, () => f.queryPart());
          if (f.r() < 0.3) parts.push(`channel=public:${encodeURIComponent(f.str(10).replace(/[\ud800-\udfff]/g, "x"))}`);
          if (f.r() < 0.1) parts.push(`ticket=${await validTicket()}`);
          path = `/v1/events?${parts.join("&")}`;
        }
        try {
          const res = await raw(r.base, method, path, headers, body);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status >= 500) failures.push(`${res.status} ${method} ${path.slice(0, 120)} ${JSON.stringify(headers).slice(0, 120)} → ${res.body.slice(0, 200)}`);
          if (res.status >= 400 && res.status !== 404) {
            const parsed = JSON.parse(res.body) as { error?: { code?: unknown } };
            if (typeof parsed.error?.code !== "string") failures.push(`no error code: ${res.status} ${res.body.slice(0, 100)}`);
            if (res.body.includes(subToken) || res.body.includes(KEY)) failures.push(`credential echoed: ${path.slice(0, 80)}`);
          }
        } catch (err) {
          failures.push(`transport error ${(err as Error).message} on ${method} ${path.slice(0, 120)}`);
        }
      }
    } finally {
      stop = true;
      await publisher;
    }

    if (process.env.FUZZ_VERBOSE) console.log(n, [...statuses]);
    expect(failures, `seed ${SEED}`).toEqual([]);
    expect(n).toBeGreaterThanOrEqual(MIN_REQUESTS);
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
    // Both outcomes were exercised, not just refusals.
    expect([...statuses.keys()].some((s) => s >= 200 && s < 300)).toBe(true);
    expect([...statuses.keys()].some((s) => s >= 400 && s < 500)).toBe(true);
    expect((await fetch(`${r.base}/healthz`)).status).toBe(200);
    // The steady subscriber got every steady message, in order, and nothing else.
    await steady.waitMessages(sent);
    expect(steady.envelopes().map((e) => e.data)).toEqual(Array.from({ length: sent }, (_, i) => i));
    expect(sent).toBeGreaterThan(20);
    steady.close();
    // The victim's stream took what it was given and stayed well-formed.
    expect(victim.closed).toBe(false);
    victim.close();
  });
});

/** The relay as `npm start` runs it, in its own process: a crash is an exit, not a hidden exception. */
async function spawnRelay(env: Record<string, string>): Promise<{ base: string; port: number; child: ChildProcess; exited(): string | undefined; stderr(): string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ["--import", "tsx", "relay/main.ts"], {
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  let exit: string | undefined;
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const exited = new Promise<void>((resolve) =>
    child.on("exit", (code, signal) => {
      exit = `exit code ${code} signal ${signal}`;
      resolve();
    }),
  );
  const deadline = Date.now() + 30_000;
  let port = 0;
  while (!port) {
    if (exit || Date.now() > deadline) throw new Error(`relay did not start (${exit ?? "timeout"}): ${out} ${err}`);
    port = Number(/listening on http:\/\/localhost:(\d+)/.exec(out)?.[1] ?? 0);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    child,
    exited: () => exit,
    stderr: () => err,
    stop: async () => {
      if (exit === undefined) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Random HTTP/1.1 traffic on raw sockets: what a proxy, a scanner or an attacker may send. */
function wireFuzzer(seed: number) {
  const f = fuzzer(seed);
  const { r, int, pick } = f;
  const json = JSON.stringify({ channel: "public:w", data: "x" });
  const deep = (n: number) => `{"channel":"public:w","data":${"[".repeat(n)}${"]".repeat(n)}}`;
  const head = (method: string, path: string, extra: string[] = []) => `${method} ${path} HTTP/1.1\r\nHost: x\r\n${extra.map((h) => `${h}\r\n`).join("")}`;
  const auth = () => (r() < 0.6 ? [`Authorization: Bearer ${KEY}`] : r() < 0.5 ? [] : [`Authorization: ${f.headerValue(30)}`]);
  const chunks = (body: string) => {
    let s = "";
    for (let i = 0; i < body.length; ) {
      const n = 1 + int(Math.max(1, body.length - i));
      s += `${n.toString(16)}${r() < 0.1 ? ";ext=1" : ""}\r\n${body.slice(i, i + n)}\r\n`;
      i += n;
    }
    return `${s}0\r\n\r\n`;
  };
  const garbage = () => Array.from(f.bytes(int(120)), (b) => String.fromCharCode(b)).join("");
  /** One request (or something shaped like the start of one). */
  const request = (): string => {
    switch (int(22)) {
      case 0: return `${head("GET", pick(["/healthz", "/v1/stats", "/metrics", "/", "/nope"]))}\r\n`;
      case 1: case 2: return `${head("GET", `/v1/events?channel=public:${pick(["a", "b", "w"])}`, r() < 0.3 ? [`Last-Event-ID: ${pick(["0-0", "1_2_3_4", f.headerValue(20)])}`] : [])}\r\n`;
      case 3: return `${head("POST", "/v1/publish", [...auth(), `Content-Length: ${json.length}`])}\r\n${json}`;
      case 4: return `${head("POST", pick(["/v1/publish", "/v1/invalidate", "/v1/tickets", "/v1/hooks/generic"]), [...auth(), "Transfer-Encoding: chunked"])}\r\n${chunks(r() < 0.5 ? json : JSON.stringify(f.json(0)) ?? "null")}`;
      case 5: return `${head("POST", "/v1/publish", [...auth(), "Transfer-Encoding: chunked"])}\r\n${pick(["zz\r\nxx\r\n", "ffffffffffffffff\r\n", "5\r\nabc\r\n", "3\r\nabcdef\r\n0\r\n\r\n", "-1\r\n", "0\r\nTrailer: x\r\n\r\n", "4\r\n{\"a\"\r\n"])}`;
      case 6: return `${head("POST", "/v1/publish", [...auth(), `Content-Length: ${pick([999999999, 5000, 2 ** 53, -1])}`])}\r\n${"x".repeat(int(300))}`;
      case 7: return `${head("POST", "/v1/publish", [...auth(), "Transfer-Encoding: chunked"])}\r\n${chunks("y".repeat(32_000 + int(3000)))}`;
      case 8: return `${head("POST", pick(["/v1/publish", "/v1/tickets"]), [...auth(), "Transfer-Encoding: chunked"])}\r\n${chunks(deep(1 + int(16_000)))}`;
      case 9: return `${head("POST", "/v1/publish", [...auth(), "Content-Length: 5", "Transfer-Encoding: chunked"])}\r\n5\r\nhello\r\n0\r\n\r\n`;
      case 10: return `${head("GET", "/healthz", ["Content-Length: 1", "Content-Length: 2"])}\r\nab`;
      case 11: return garbage();
      case 12: return pick(["GET /v1/ev", "GET / HTTP/1.1\r\nHost", "POST /v1/publish HTTP/1.1\r\nContent-Length: 10\r\n\r\nab", "\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]);
      case 13: return `${head(pick(["BREW", "CONNECT", "TRACE", "DELETE", "get", "G\u0000T"]), pick(["/v1/events?channel=public:a", "*", "http://evil.example/v1/stats", "/v1/publish"]))}\r\n`;
      case 14: return `${head("GET", "/v1/stats", [`X-Big: ${"a".repeat(int(20_000))}`])}\r\n`;
      case 15: return `${head("GET", "/v1/stats", [pick(["NoColonHere", "X-Nul: a\u0000b", " Leading: space", "X-Bad\u00ff: 1", "X-Obs: a\r\n folded"])])}\r\n`;
      case 16: return `${head("GET", "/v1/events?channel=public:a", ["Upgrade: websocket", "Connection: Upgrade"])}\r\n`;
      case 17: return `${head("POST", "/v1/publish", [...auth(), "Expect: 100-continue", `Content-Length: ${json.length}`])}\r\n${json}`;
      case 18: return `GET /v1/stats HTTP/1.0\r\n\r\n`;
      case 19: return `${head("GET", `/v1/events?${Array.from({ length: 1 + int(4) }, () => f.queryPart()).join("&")}`, [`X-Forwarded-For: ${pick(["1.2.3.4", "::1, 127.0.0.1", f.headerValue(30)])}`])}\r\n`;
      case 20: return `${head("POST", "/v1/publish", [...auth(), "Transfer-Encoding: chunked"])}\r\n${int(0x2000).toString(16)}\r\n${"z".repeat(int(0x3000))}`;
      default: return `${head("GET", "/v1/stats", ["Connection: close"])}\r\n`;
    }
  };
  return { ...f, request };
}

describe.each(modes)("HTTP/1.1 wire fuzz on the $name", (mode) => {
  it("survives pipelined, truncated, malformed, oversized and slow requests in its own process, and serves afterwards", async () => {
    const relay = await spawnRelay({
      ...mode.env(),
      FANOUT_PUBLISH_KEYS: KEY,
      FANOUT_PUBLIC_CHANNELS: "public:*",
      // Room for bodies nested far past where JSON.stringify throws (about 5,000 levels).
      FANOUT_MAX_BODY_BYTES: "32768",
      FANOUT_HOOK_SECRET: "wire-hook-secret",
      FANOUT_REQUEST_TIMEOUT_MS: "1000",
      FANOUT_PUBLISH_RATE: "100000",
    });
    const f = wireFuzzer(SEED + 100 + (mode.name === "memory broker" ? 0 : 1));
    const failures: string[] = [];
    let connections = 0;
    try {
      const deadline = Date.now() + 4000;
      const worker = async () => {
        while ((Date.now() < deadline || connections < 60) && connections < 400) {
          connections++;
          const c = await RawConnection.open(relay.port).catch((err: Error) => {
            failures.push(`connect failed: ${err.message}`);
          });
          if (!c) return;
          try {
            const wire = Array.from({ length: 1 + f.int(5) }, () => f.request()).join("");
            // Sent whole, or in random pieces with pauses (a slow body among them).
            if (f.r() < 0.6) await c.write(wire);
            else {
              for (let i = 0; i < wire.length && !c.closed; ) {
                const n = 1 + f.int(Math.min(wire.length - i, 400));
                await c.write(wire.slice(i, i + n));
                i += n;
                await new Promise((res) => setTimeout(res, f.int(40)));
              }
            }
            await new Promise((res) => setTimeout(res, f.int(60)));
            if (f.r() < 0.3) await c.waitClosed(3000).catch(() => undefined);
            if (/HTTP\/1\.1 5\d\d /.test(c.text)) failures.push(`5xx for ${JSON.stringify(wire.slice(0, 200))}: ${c.text.slice(0, 300)}`);
          } finally {
            c.close();
          }
          if (relay.exited()) return;
        }
      };
      await Promise.all(Array.from({ length: 6 }, worker));

      expect(relay.exited(), relay.stderr().slice(-2000)).toBeUndefined();
      expect(failures, `seed ${SEED}`).toEqual([]);
      expect(connections).toBeGreaterThanOrEqual(60);
      // Still serving: a stream and a publish round trip.
      expect((await fetch(`${relay.base}/healthz`)).status).toBe(200);
      const sub = await SseClient.open(`${relay.base}/v1/events?channel=public:after`);
      await sub.waitReady();
      expect((await publish(relay.base, { channel: "public:after", data: "alive" }, { Authorization: `Bearer ${KEY}` })).status).toBe(200);
      await sub.waitMessages(1);
      sub.close();
      // No 500 was logged (a refusal is never an "unexpected error").
      expect(relay.stderr()).not.toMatch(/unexpected error|Uncaught/);
    } finally {
      await relay.stop();
    }
  });
});
