import { describe, expect, it } from "vitest";
import { SseParser, type SseEvent } from "./sse-parser.js";

interface Parsed {
  events: SseEvent[];
  retries: number[];
  comments: string[];
}

function parse(chunks: Array<Uint8Array | string>, lastEventId?: string): Parsed {
  const out: Parsed = { events: [], retries: [], comments: [] };
  const p = new SseParser(
    { onEvent: (e) => out.events.push(e), onRetry: (ms) => out.retries.push(ms), onComment: (t) => out.comments.push(t) },
    lastEventId,
  );
  for (const c of chunks) p.feed(c);
  p.end();
  return out;
}

const bytes = (s: string) => new TextEncoder().encode(s);

// Every rule at least once, with all three line endings and multibyte characters of 2, 3 and 4 bytes.
const SAMPLE =
  "\uFEFF" +
  "retry: 2000\r\n\r\n" +
  ": heartbeat\n\n" +
  "id: 0_0_0_0\r\nevent: ready\r\ndata: {\"connection\":\"c1\"}\r\n\r\n" +
  "id: 1-2-3\nevent: order.created\ndata: {\"a\":\"é漢🙂\"}\n\n" +
  "data: line one\rdata: line two\r\rdata:no-space\r\ndata:  two spaces\n\n" +
  "retry: 12x\nretry: 350\nevent: ignored\n\n" +
  "id\ndata\n\n" +
  "id: a\u0000b\ndata: kept id\n\n" +
  "unknown: field\ndata: 🙂🙂\nevent\n\n" +
  ":no-space comment\r\ndata: tail-not-dispatched";

const EXPECTED: Parsed = {
  events: [
    { type: "ready", data: '{"connection":"c1"}', lastEventId: "0_0_0_0" },
    { type: "order.created", data: '{"a":"é漢🙂"}', lastEventId: "1-2-3" },
    { type: "message", data: "line one\nline two", lastEventId: "1-2-3" },
    { type: "message", data: "no-space\n two spaces", lastEventId: "1-2-3" },
    { type: "message", data: "", lastEventId: "" },
    { type: "message", data: "kept id", lastEventId: "" },
    { type: "message", data: "🙂🙂", lastEventId: "" },
  ],
  retries: [2000, 350],
  comments: ["heartbeat", "no-space comment"],
};

describe("SseParser", () => {
  it("parses the sample in one chunk", () => {
    expect(parse([bytes(SAMPLE)])).toEqual(EXPECTED);
  });

  it("gives the same result for a split at every byte offset (inside CRLF and inside UTF-8 sequences)", () => {
    const all = bytes(SAMPLE);
    for (let i = 0; i <= all.length; i++) {
      expect(parse([all.slice(0, i), all.slice(i)]), `split at ${i}`).toEqual(EXPECTED);
    }
  });

  it("gives the same result for every pair of split offsets, and byte by byte", () => {
    const all = bytes(SAMPLE);
    const want = JSON.stringify(EXPECTED);
    const wrong: string[] = [];
    for (let i = 0; i <= all.length; i++) {
      for (let j = i; j <= all.length; j++) {
        if (JSON.stringify(parse([all.slice(0, i), all.slice(i, j), all.slice(j)])) !== want) wrong.push(`${i},${j}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(parse(Array.from(all, (b) => Uint8Array.of(b)))).toEqual(EXPECTED);
  });

  it("accepts text chunks too, split at every UTF-16 offset", () => {
    for (let i = 0; i <= SAMPLE.length; i++) expect(parse([SAMPLE.slice(0, i), SAMPLE.slice(i)]), `split at ${i}`).toEqual(EXPECTED);
  });

  it("strips exactly one BOM", () => {
    const r = parse([bytes("\uFEFF\uFEFFdata: x\n\n")]);
    // The second BOM is part of the first field name, so the line is an unknown field.
    expect(r.events).toEqual([]);
    expect(parse([bytes("\uFEFFdata: x\n\n")]).events).toEqual([{ type: "message", data: "x", lastEventId: "" }]);
  });

  it("does not dispatch an event without data, and resets the type after each event", () => {
    const r = parse(["event: a\n\nid: 5\n\ndata: x\n\n"]);
    expect(r.events).toEqual([{ type: "message", data: "x", lastEventId: "5" }]);
  });

  it("keeps the resumed id for events that carry none", () => {
    expect(parse(["event: reset\ndata: {}\n\n"], "prev").events).toEqual([{ type: "reset", data: "{}", lastEventId: "prev" }]);
  });

  it("discards an unterminated event at the end and survives a lone CR at the very end", () => {
    expect(parse(["data: a\n\ndata: b\r"]).events.map((e) => e.data)).toEqual(["a"]);
    expect(parse(["data: a\r", "\r"]).events.map((e) => e.data)).toEqual(["a"]);
    expect(parse(["data: a\r", "\n", "\n"]).events.map((e) => e.data)).toEqual(["a"]);
  });

  it("replaces invalid UTF-8 with U+FFFD instead of failing", () => {
    expect(parse([Uint8Array.of(0x64, 0x61, 0x74, 0x61, 0x3a, 0x20, 0xff, 0x0a, 0x0a)]).events[0].data).toBe("\uFFFD");
  });
});
