/**
 * Raw-socket SSE subscriber: HTTP/1.1 GET, a minimal response/chunked decoder and a minimal
 * SSE parser, kept cheap so that the load generator is not what limits a benchmark.
 *
 * Every benchmark message carries `"q":<per-channel sequence>,"t":<send time, µs, CLOCK_MONOTONIC>,
 * "k":<channel index>` somewhere in its SSE data (the relay wraps it in an envelope; Nchan
 * delivers the posted body as is), so a receiver needs neither JSON.parse nor allocation
 * per message: three integer scans.
 */
import { connect, type Socket } from "node:net";
import { createInflateRaw, type InflateRaw } from "node:zlib";
import type { Histogram } from "./histogram.js";
import { countSeq, SubCounters } from "./sub-tally.js";

/** Microseconds on CLOCK_MONOTONIC (shared by every process on the machine). */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Reads the non-negative integer that follows `key` in `s`, or -1. */
export function intAfter(s: string, key: string, from = 0): number {
  const i = s.indexOf(key, from);
  if (i < 0) return -1;
  let j = i + key.length;
  let v = 0;
  let any = false;
  for (;;) {
    const c = s.charCodeAt(j);
    if (c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      any = true;
      j++;
    } else break;
  }
  return any ? v : -1;
}

export interface ConnStats {
  received: number;
  unique: number;
  dup: number;
  ooo: number;
  gaps: number;
  wrongKey: number;
  malformed: number;
}

const enum Body {
  Headers,
  Identity,
  ChunkSize,
  ChunkData,
  ChunkCrlf,
  Done,
}

export interface SseConnOptions {
  host: string;
  port: number;
  path: string;
  /** Channel index expected in `"k"` (misrouted messages are counted). */
  key: number;
  /** SSE event name that marks the subscription live; null = the 200 response headers do. */
  readyEvent: string | null;
  headers?: string;
  /** Send `Accept-Encoding: gzip` (a gzip response is decoded; wire bytes are counted either way). */
  acceptGzip?: boolean;
  hist: Histogram;
  onReady(c: SseConn): void;
  onFail(c: SseConn, why: string): void;
}

export class SseConn extends SubCounters {
  sock: Socket;
  status = 0;
  private state = Body.Headers;
  private head = "";
  private sizeLine = "";
  private remaining = 0;
  private crlfLeft = 0;
  private text = "";
  private now = 0;
  private inflate: InflateRaw | undefined;
  /** gzip member header bytes still to skip. */
  private gzipHeaderLeft = 0;

  /** `wireBytes`: response body bytes as received (compressed or not), after the head. */
  constructor(readonly o: SseConnOptions) {
    super();
    this.sock = connect({ host: o.host, port: o.port });
    this.sock.setNoDelay(true);
    this.sock.on("connect", () => {
      this.sock.write(
        `GET ${o.path} HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n${o.acceptGzip ? "Accept-Encoding: gzip\r\n" : ""}${o.headers ?? ""}\r\n`,
      );
    });
    this.sock.on("data", (b: Buffer) => this.onData(b));
    this.sock.on("error", (e) => this.fail(`socket error: ${e.message}`));
    this.sock.on("close", () => {
      this.closed = true;
      if (!this.ready) this.fail("closed before ready");
    });
  }

  private fail(why: string): void {
    if (this.failed) return;
    this.failed = true;
    if (!this.ready) this.o.onFail(this, why);
  }

  private markReady(): void {
    if (this.ready) return;
    this.ready = true;
    this.o.onReady(this);
  }

  private onData(b: Buffer): void {
    this.now = nowUs();
    let pos = 0;
    const n = b.length;
    while (pos < n) {
      switch (this.state) {
        case Body.Headers: {
          // headers are small and arrive once: string handling is fine here
          const s = this.head + b.toString("latin1", pos);
          const end = s.indexOf("\r\n\r\n");
          if (end < 0) {
            this.head = s;
            return;
          }
          const head = s.slice(0, end);
          const consumed = end + 4 - this.head.length;
          this.head = "";
          pos += consumed;
          this.status = Number(head.slice(9, 12));
          if (this.status !== 200) {
            this.fail(`HTTP ${head.split("\r\n", 1)[0]}`);
            this.sock.destroy();
            return;
          }
          this.state = /^transfer-encoding:\s*chunked/im.test(head) ? Body.ChunkSize : Body.Identity;
          if (/^content-encoding:\s*gzip/im.test(head)) {
            // The relay's gzip stream: a 10-byte member header, then raw deflate blocks.
            this.gzipHeaderLeft = 10;
            this.inflate = createInflateRaw();
            this.inflate.on("data", (d: Buffer) => {
              this.now = nowUs();
              this.feed(d.toString("latin1"));
            });
            this.inflate.on("error", () => this.malformed++);
          }
          if (this.o.readyEvent === null) this.markReady();
          break;
        }
        case Body.Identity:
          this.body(b, pos, n);
          return;
        case Body.ChunkSize: {
          const nl = b.indexOf(10, pos);
          if (nl < 0) {
            this.sizeLine += b.toString("latin1", pos);
            return;
          }
          const line = this.sizeLine + b.toString("latin1", pos, nl);
          this.sizeLine = "";
          pos = nl + 1;
          const size = parseInt(line, 16);
          if (!(size >= 0)) {
            this.malformed++;
            this.sock.destroy();
            return;
          }
          if (size === 0) {
            this.state = Body.Done;
            return;
          }
          this.remaining = size;
          this.state = Body.ChunkData;
          break;
        }
        case Body.ChunkData: {
          const take = Math.min(this.remaining, n - pos);
          this.body(b, pos, pos + take);
          pos += take;
          this.remaining -= take;
          if (this.remaining === 0) {
            this.state = Body.ChunkCrlf;
            this.crlfLeft = 2;
          }
          break;
        }
        case Body.ChunkCrlf: {
          const take = Math.min(this.crlfLeft, n - pos);
          pos += take;
          this.crlfLeft -= take;
          if (this.crlfLeft === 0) this.state = Body.ChunkSize;
          break;
        }
        case Body.Done:
          return;
      }
    }
  }

  private body(b: Buffer, from: number, to: number): void {
    this.wireBytes += to - from;
    if (!this.inflate) {
      this.feed(b.toString("latin1", from, to));
      return;
    }
    const skip = Math.min(this.gzipHeaderLeft, to - from);
    this.gzipHeaderLeft -= skip;
    if (from + skip < to) this.inflate.write(b.subarray(from + skip, to));
  }

  /** SSE text (latin1: only ASCII fields are read, so split UTF-8 sequences are harmless). */
  private feed(s: string): void {
    let t = this.text.length ? this.text + s : s;
    if (t.indexOf("\r") >= 0) t = t.replace(/\r\n?/g, "\n");
    let start = 0;
    for (;;) {
      const end = t.indexOf("\n\n", start);
      if (end < 0) break;
      this.event(t, start, end);
      start = end + 2;
    }
    this.text = start === 0 ? t : t.slice(start);
  }

  /** One SSE event block t[start, end). */
  private event(t: string, start: number, end: number): void {
    let data: string | undefined;
    let ev: string | undefined;
    let i = start;
    while (i < end) {
      let nl = t.indexOf("\n", i);
      if (nl < 0 || nl > end) nl = end;
      const c = t.charCodeAt(i);
      if (c === 100 /* d */ && t.startsWith("data:", i)) {
        const v = t.slice(t.charCodeAt(i + 5) === 32 ? i + 6 : i + 5, nl);
        data = data === undefined ? v : `${data}\n${v}`;
      } else if (c === 101 /* e */ && t.startsWith("event:", i)) {
        ev = t.slice(t.charCodeAt(i + 6) === 32 ? i + 7 : i + 6, nl);
      }
      i = nl + 1;
    }
    if (!this.ready) {
      if (ev !== undefined && ev === this.o.readyEvent) this.markReady();
      return;
    }
    if (data === undefined) return;
    this.message(data);
  }

  private message(d: string): void {
    const q = intAfter(d, '"q":');
    const t = intAfter(d, '"t":');
    const k = intAfter(d, '"k":');
    if (q < 1 || t < 0) {
      this.malformed++;
      return;
    }
    this.received++;
    if (k !== this.o.key) this.wrongKey++;
    this.o.hist.record(this.now - t);
    countSeq(this, q);
  }

  close(): void {
    if (this.sock.destroyed) return;
    // RST instead of FIN: no TIME_WAIT pile-up across 10,000-connection scenarios
    if (typeof this.sock.resetAndDestroy === "function") this.sock.resetAndDestroy();
    else this.sock.destroy();
  }
}
