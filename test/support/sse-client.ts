import { request, type IncomingMessage, type ClientRequest } from "node:http";
import { SseParser } from "../../client/sse-parser.js";

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

const CONTROL_EVENTS = new Set(["ready", "reset", "subscribed", "presence"]);

/**
 * A real SSE client over node:http, parsing with the SDK's spec-conformant parser
 * (client/sse-parser.ts). Tests read what a browser's EventSource would see.
 */
export class SseClient {
  readonly events: SseEvent[] = [];
  comments = 0;
  retry?: number;
  status = 0;
  headers: IncomingMessage["headers"] = {};
  body = "";
  closed = false;
  private readonly parser = new SseParser({
    onEvent: (e) => {
      this.lastEventId = e.lastEventId || undefined;
      this.events.push({ id: this.lastEventId, event: e.type, data: e.data });
    },
    onRetry: (ms) => (this.retry = ms),
    onComment: () => this.comments++,
  });
  private req?: ClientRequest;
  private res?: IncomingMessage;
  private waiters: Array<() => void> = [];
  /** Last id seen, as EventSource keeps it for Last-Event-ID. */
  lastEventId?: string;

  static open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const c = new SseClient();
    return c.connect(url, headers).then(() => c);
  }

  private connect(url: string, headers: Record<string, string>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.req = request(url, { headers: { Accept: "text/event-stream", ...headers } }, (res) => {
        this.res = res;
        this.status = res.statusCode ?? 0;
        this.headers = res.headers;
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => this.feed(chunk));
        res.on("end", () => this.finish());
        res.on("close", () => this.finish());
        res.on("error", () => this.finish());
        resolve();
      });
      this.req.on("error", (e) => {
        this.finish();
        reject(e);
      });
      this.req.end();
    });
  }

  private finish(): void {
    this.closed = true;
    this.wake();
  }

  private feed(chunk: string): void {
    if (this.status !== 200) this.body += chunk;
    else this.parser.feed(chunk);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Messages that are not control events (ready/reset, subscribed acks, presence). */
  messages(): SseEvent[] {
    return this.events.filter((e) => !CONTROL_EVENTS.has(e.event));
  }

  envelopes(): Array<{ id: string; channel: string; pattern?: string; type?: string; meta?: Record<string, string>; data: unknown; ts: number }> {
    return this.messages().map((e) => JSON.parse(e.data));
  }

  async waitFor(pred: (c: SseClient) => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${this.events.length} events, last: ${JSON.stringify(this.events.slice(-2)).slice(0, 300)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, Math.min(100, deadline - Date.now())));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  waitReady(timeoutMs = 5000): Promise<void> {
    return this.waitFor((c) => c.events.some((e) => e.event === "ready"), timeoutMs, "ready");
  }

  waitMessages(n: number, timeoutMs = 5000): Promise<void> {
    return this.waitFor((c) => c.messages().length >= n, timeoutMs, `${n} messages`);
  }

  waitClosed(timeoutMs = 5000): Promise<void> {
    return this.waitFor((c) => c.closed, timeoutMs, "close");
  }

  /** Stops reading without closing: the server sees a stalled consumer. */
  pause(): void {
    this.res?.pause();
  }

  /** Reads again after `pause`. */
  resume(): void {
    this.res?.resume();
  }

  close(): void {
    this.req?.destroy();
    this.closed = true;
  }
}

export function publish(base: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  return postJson(`${base}/v1/publish`, body, headers);
}

/** POST /v1/tickets: `json.ticket` is the ticket when `status` is 200. */
export function requestTicket(base: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  return postJson(`${base}/v1/tickets`, body, headers);
}

/** A JSON POST; the answer's body parsed as JSON, or its text when it is not JSON. */
async function postJson(url: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/**
 * SSE clients a test opens against one relay, all closed together in `afterEach`:
 * `const pool = ssePool(() => r.base)`; `await pool.open("channel=a")`; `pool.closeAll()`.
 */
export function ssePool(base: () => string): {
  open(qs: string, headers?: Record<string, string>): Promise<SseClient>;
  /** Any stream URL (another relay, another route), closed with the others. */
  openUrl(url: string, headers?: Record<string, string>): Promise<SseClient>;
  closeAll(): void;
} {
  const clients: SseClient[] = [];
  const openUrl = async (url: string, headers?: Record<string, string>) => {
    const c = await SseClient.open(url, headers);
    clients.push(c);
    return c;
  };
  return {
    open: (qs, headers) => openUrl(`${base()}/v1/events?${qs}`, headers),
    openUrl,
    closeAll() {
      clients.splice(0).forEach((c) => c.close());
    },
  };
}
