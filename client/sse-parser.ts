/** One dispatched event, as `EventSource` would hand it to a listener. */
export interface SseEvent {
  /** The `event:` field, or `"message"` when the event had none. */
  type: string;
  /** The `data:` lines joined with `\n`. */
  data: string;
  /** The last event ID in effect when this event was dispatched (it persists across events). */
  lastEventId: string;
}

export interface SseParserHandlers {
  onEvent(event: SseEvent): void;
  /** A valid `retry:` field (ASCII digits only): the reconnection time in milliseconds. */
  onRetry?(ms: number): void;
  /** A comment line (`: …`), e.g. a heartbeat; the text after the colon. */
  onComment?(text: string): void;
}

const LF = 0x0a;
const CR = 0x0d;
const DIGITS = /^[0-9]+$/;

/**
 * An incremental parser for `text/event-stream`, following the WHATWG HTML "event stream
 * interpretation" rules: UTF-8 decoding that survives multibyte characters split across
 * chunks, one leading BOM stripped, lines ended by CRLF, LF or CR (a CRLF split across two
 * chunks counts once), `data` lines joined with LF, `id` values containing NUL ignored,
 * `retry` only when all digits, comments and unknown fields ignored, and an event left
 * unterminated when the stream ends discarded.
 *
 * It does no I/O: feed it bytes (or text) and it calls the handlers synchronously.
 */
export class SseParser {
  // ignoreBOM keeps a BOM in the text, so exactly one is stripped below, for bytes and text alike.
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  private buf = "";
  /** The previous chunk ended with CR: a LF starting the next one belongs to that line end. */
  private skipLf = false;
  private started = false;
  private data = "";
  private hasData = false;
  private type = "";
  private lastId: string;

  /**
   * @param lastEventId the ID a resumed stream starts from, so events on the new
   *   connection that carry no `id:` still report it (as EventSource keeps it across reconnects).
   */
  constructor(
    private readonly handlers: SseParserHandlers,
    lastEventId = "",
  ) {
    this.lastId = lastEventId;
  }

  get lastEventId(): string {
    return this.lastId;
  }

  feed(chunk: Uint8Array | string): void {
    let text = typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.skipLf && text.length > 0) {
      this.skipLf = false;
      if (text.charCodeAt(0) === LF) text = text.slice(1);
    }
    this.buf += text;
    this.drainLines();
  }

  /** The stream ended: flushes the decoder; a pending, unterminated event is discarded. */
  end(): void {
    const tail = this.decoder.decode();
    if (tail) this.feed(tail);
    this.buf = "";
    this.data = "";
    this.hasData = false;
    this.type = "";
  }

  private drainLines(): void {
    const buf = this.buf;
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (c !== LF && c !== CR) continue;
      this.line(buf.slice(start, i));
      if (c === CR) {
        if (i + 1 < buf.length) {
          if (buf.charCodeAt(i + 1) === LF) i++;
        } else {
          this.skipLf = true;
        }
      }
      start = i + 1;
    }
    this.buf = start === 0 ? buf : buf.slice(start);
  }

  private line(line: string): void {
    if (line.length === 0) return this.dispatch();
    const colon = line.indexOf(":");
    if (colon === 0) {
      this.handlers.onComment?.(line.slice(1).replace(/^ /, ""));
      return;
    }
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    switch (field) {
      case "event":
        this.type = value;
        break;
      case "data":
        this.data += this.hasData ? `\n${value}` : value;
        this.hasData = true;
        break;
      case "id":
        if (!value.includes("\u0000")) this.lastId = value;
        break;
      case "retry":
        if (DIGITS.test(value)) this.handlers.onRetry?.(Number(value));
        break;
    }
  }

  private dispatch(): void {
    const { hasData, data, type } = this;
    this.data = "";
    this.hasData = false;
    this.type = "";
    if (!hasData) return;
    this.handlers.onEvent({ type: type || "message", data, lastEventId: this.lastId });
  }
}
