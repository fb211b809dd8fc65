import { inject } from "vitest";
import { partitionOf, streamKey } from "../../protocol/partition.js";
import worker from "../index.js";

/**
 * Helpers for the tests that run inside workerd: requests go straight to the worker's
 * `fetch` with an env built here, and Redis is inspected through the REST server.
 */
export const PUBLISH_KEY = "pk-test-1";
export const PARTITIONS = 4;

export type Env = Record<string, string>;

export function testEnv(over: Env = {}): Env {
  return {
    UPSTASH_REDIS_REST_URL: inject("restUrl"),
    UPSTASH_REDIS_REST_TOKEN: inject("restToken"),
    FANOUT_PUBLISH_KEYS: `${PUBLISH_KEY}, pk-test-2`,
    FANOUT_LOG_PREFIX: `t${crypto.randomUUID().slice(0, 8)}`,
    ...over,
  };
}

export interface Call {
  body?: unknown;
  /** Sent as is (no JSON encoding). */
  raw?: string | Uint8Array<ArrayBuffer>;
  headers?: Record<string, string>;
  key?: string | null;
}

export async function call(env: Env, path: string, opts: Call = {}): Promise<{ status: number; headers: Headers; json: any }> {
  const headers: Record<string, string> = { "content-type": "application/json", ...opts.headers };
  const key = opts.key === undefined ? PUBLISH_KEY : opts.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const body = opts.raw ?? JSON.stringify(opts.body);
  const res = await worker.fetch(new Request(`https://fanout.test${path}`, { method: "POST", headers, body }), env);
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, json };
}

/** One Redis command through the REST server (plain JSON form, no base64). */
export async function redis(...cmd: (string | number)[]): Promise<any> {
  const res = await fetch(inject("restUrl"), {
    method: "POST",
    headers: { authorization: `Bearer ${inject("restToken")}` },
    body: JSON.stringify(cmd),
  });
  const out = (await res.json()) as { result?: unknown; error?: string };
  if (out.error) throw new Error(out.error);
  return out.result;
}

/** Entries of `channel` in its log partition: `{ id, fields }` oldest first. */
export async function logEntries(env: Env, channel: string): Promise<{ id: string; fields: Record<string, string> }[]> {
  const key = streamKey(env.FANOUT_LOG_PREFIX, partitionOf(channel, PARTITIONS));
  const raw = (await redis("XRANGE", key, "-", "+")) as [string, string[]][];
  return raw
    .map(([id, kv]) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i < kv.length; i += 2) fields[kv[i]] = kv[i + 1];
      return { id, fields };
    })
    .filter((e) => e.fields.c === channel);
}

/**
 * A plain Redis subscriber (SUBSCRIBE on the real server, streamed by the REST server's
 * `/subscribe`), live once this resolves.
 */
export async function plainSubscriber(channel: string): Promise<{ next(timeoutMs?: number): Promise<string>; close(): void }> {
  const ctl = new AbortController();
  const res = await fetch(`${inject("restUrl")}/subscribe/${channel}`, {
    method: "POST",
    headers: { authorization: `Bearer ${inject("restToken")}`, accept: "text/event-stream" },
    signal: ctl.signal,
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  const events: string[] = [];
  async function read(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = buf.indexOf("\n\n");
      if (at >= 0) {
        const ev = buf.slice(0, at).replace(/^data: /, "");
        buf = buf.slice(at + 2);
        return ev;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message on ${channel} within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const chunk = await Promise.race([
        reader.read(),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no message on ${channel} within ${timeoutMs} ms`)), left))),
      ]).finally(() => clearTimeout(timer));
      if (chunk.done) throw new Error("subscription ended");
      buf += decoder.decode(chunk.value, { stream: true });
    }
  }
  const first = await read(5000);
  if (!first.startsWith(`subscribe,${channel},`)) throw new Error(`unexpected subscribe reply ${first}`);
  return {
    async next(timeoutMs = 3000) {
      const ev = events.shift() ?? (await read(timeoutMs));
      const prefix = `message,${channel},`;
      if (!ev.startsWith(prefix)) throw new Error(`unexpected event ${ev}`);
      return ev.slice(prefix.length);
    },
    close() {
      ctl.abort();
    },
  };
}

export function uniq(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** A minimal SSE reader over fetch, for reading the relay from inside workerd. */
export async function openSse(url: string, headers: Record<string, string> = {}): Promise<{ next(timeoutMs?: number): Promise<SseEvent>; close(): void }> {
  const ctl = new AbortController();
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: ctl.signal });
  if (res.status !== 200) throw new Error(`SSE ${url}: ${res.status} ${await res.text()}`);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  return {
    async next(timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const at = buf.indexOf("\n\n");
        if (at >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const ev: SseEvent = { data: "" };
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":") || line === "") continue;
            const i = line.indexOf(":");
            const [k, v] = i < 0 ? [line, ""] : [line.slice(0, i), line.slice(i + 1).replace(/^ /, "")];
            if (k === "id") ev.id = v;
            else if (k === "event") ev.event = v;
            else if (k === "data") data.push(v);
          }
          if (data.length === 0 && ev.event === undefined && ev.id === undefined) continue;
          ev.data = data.join("\n");
          return ev;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no SSE event within ${timeoutMs} ms`);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const chunk = await Promise.race([
          reader.read(),
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no SSE event within ${timeoutMs} ms`)), left))),
        ]).finally(() => clearTimeout(timer));
        if (chunk.done) throw new Error("SSE stream ended");
        buf += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
      }
    },
    close() {
      ctl.abort();
    },
  };
}
