import { afterEach } from "vitest";
import { request } from "node:http";
import { connect, type Socket } from "node:net";

/**
 * A bare TCP connection to the relay, for what HTTP clients refuse to send: pipelined
 * requests, bodies that never end, malformed framing. Everything received is kept as text.
 */
export class RawConnection {
  text = "";
  closed = false;
  /** Bytes written before the relay closed the connection (a reset while sending is expected). */
  written = 0;
  private waiters: Array<() => void> = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      this.text += d;
      this.wake();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
  }

  static open(port: number, localAddress?: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: "127.0.0.1", localAddress }, () => resolve(new RawConnection(s)));
      s.once("error", reject);
    });
  }

  /** Writes unless the connection is gone; resolves once the bytes are handed to the kernel. */
  write(data: string | Uint8Array): Promise<void> {
    if (this.closed || this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.write(data, () => {
        this.written += typeof data === "string" ? Buffer.byteLength(data, "latin1") : data.byteLength;
        resolve();
      });
    });
  }

  /** Waits until what was received satisfies `test` (rejects, naming `what` and showing the text, after `guardMs`). */
  async waitFor(test: (text: string) => boolean, what: string, guardMs = 15_000): Promise<void> {
    const deadline = Date.now() + guardMs;
    while (!test(this.text)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.text.slice(0, 600))}`);
      if (this.closed) throw new Error(`connection closed before ${what}; received ${JSON.stringify(this.text.slice(0, 600))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  async waitClosed(guardMs = 15_000): Promise<void> {
    const deadline = Date.now() + guardMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`connection still open; received ${JSON.stringify(this.text.slice(0, 600))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  /** The status codes of the responses received so far, in order. */
  statuses(): number[] {
    return [...this.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  }

  /** The JSON error codes received so far, in order. */
  errorCodes(): string[] {
    return [...this.text.matchAll(/"error":\{"code":"([^"]+)"/g)].map((m) => m[1]);
  }

  close(): void {
    this.socket.destroy();
  }

  /** Half-closes: sends FIN, keeps reading. */
  end(): void {
    this.socket.end();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** One chunk of a chunked request body. */
export function chunk(data: string): string {
  return `${Buffer.byteLength(data, "latin1").toString(16)}\r\n${data}\r\n`;
}

/** Opens raw connections for the enclosing suite and closes those still open after each test. */
export function rawConnections(): (port: number, localAddress?: string) => Promise<RawConnection> {
  const opened: RawConnection[] = [];
  afterEach(() => opened.splice(0).forEach((c) => c.close()));
  return async (port, localAddress) => {
    const c = await RawConnection.open(port, localAddress);
    opened.push(c);
    return c;
  };
}

/** Opens a stream from a chosen loopback address (the whole of 127/8 is local on Linux): its status, then open until `close()`. */
export function openFrom(base: string, qs: string, localAddress: string): Promise<{ status: number; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/v1/events?${qs}`, { localAddress, headers: { Accept: "text/event-stream" } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, close: () => req.destroy() });
    });
    req.on("error", reject);
    req.end();
  });
}

