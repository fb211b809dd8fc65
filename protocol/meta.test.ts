import { describe, expect, it } from "vitest";
import { thrownCode as code } from "../test/support/thrown.js";
import { MAX_META_BYTES, MAX_META_KEYS, checkMeta, isValidTraceparent } from "./meta.js";
import { parsePublishBody } from "./publish-request.js";
import { plainEnvelopeIn } from "./plain-envelope.js";

const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

describe("isValidTraceparent", () => {
  it("takes W3C traceparents and nothing else", () => {
    expect(isValidTraceparent(TP)).toBe(true);
    expect(isValidTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future")).toBe(true);
    for (const bad of [
      "",
      TP.toUpperCase(),
      `${TP}-x`, // version 00 has exactly four fields
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
      "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
    ]) {
      expect(isValidTraceparent(bad), bad).toBe(false);
    }
  });
});

describe("checkMeta", () => {
  const ok = (v: unknown, tp?: string) => checkMeta(v, "meta", tp);
  it("returns JSON text for valid metadata and nothing for none", () => {
    expect(ok({ source: "billing", correlation_id: "c-1", traceparent: TP, "x.y:z-1": "é" })).toBe(
      JSON.stringify({ source: "billing", correlation_id: "c-1", traceparent: TP, "x.y:z-1": "é" }),
    );
    expect(ok(undefined)).toBeUndefined();
    expect(ok(null)).toBeUndefined();
    expect(ok({})).toBeUndefined();
  });

  it("refuses what is not a small flat object of strings with 400 invalid_meta", () => {
    const many = Object.fromEntries(Array.from({ length: MAX_META_KEYS + 1 }, (_, i) => [`k${i}`, "v"]));
    const cases: unknown[] = [
      "source=x",
      ["a"],
      5,
      { n: 1 },
      { nested: { a: "b" } },
      { empty: null },
      { "": "v" },
      { _private: "v" },
      { __proto__x: "v" },
      { "a b": "v" },
      { ["k".repeat(65)]: "v" },
      { line: "a\nb" },
      { nul: "a\u0000" },
      { lone: "\ud800" },
      { traceparent: "not-a-trace" },
      many,
      { big: "x".repeat(MAX_META_BYTES) },
      { a: "x".repeat(1100), b: "y".repeat(1100) },
      { multi: "é".repeat(1100) },
    ];
    for (const v of cases) expect(code(() => ok(v)), JSON.stringify(v).slice(0, 60)).toBe("400 invalid_meta");
    expect(code(() => ok(Object.fromEntries(Array.from({ length: MAX_META_KEYS }, (_, i) => [`k${i}`, "v"]))))).toBeUndefined();
    expect(code(() => ok({ big: "x".repeat(MAX_META_BYTES - 3) }))).toBeUndefined();
  });

  it("adds a valid traceparent header when the body has none; ignores an invalid header; the body wins", () => {
    expect(JSON.parse(ok({ source: "s" }, TP)!)).toEqual({ source: "s", traceparent: TP });
    expect(JSON.parse(ok(undefined, ` ${TP} `)!)).toEqual({ traceparent: TP });
    expect(ok({ source: "s" }, "garbage")).toBe('{"source":"s"}');
    const other = "00-11111111111111111111111111111111-2222222222222222-00";
    expect(JSON.parse(ok({ traceparent: other }, TP)!)).toEqual({ traceparent: other });
    // The limits count the forwarded header too.
    const full = Object.fromEntries(Array.from({ length: MAX_META_KEYS }, (_, i) => [`k${i}`, "v"]));
    expect(code(() => ok(full, TP))).toBe("400 invalid_meta");
  });

  it("is part of every publish body, batch items included", () => {
    const one = parsePublishBody({ channel: "c", data: 1, meta: { source: "a" } }, { maxBatch: 5, traceparent: TP });
    expect(one.messages[0]).toEqual({ channel: "c", data: "1", meta: JSON.stringify({ source: "a", traceparent: TP }) });
    const batch = parsePublishBody({ messages: [{ channel: "c", data: 1 }, { channel: "d", data: 2, meta: { traceparent: TP } }] }, { maxBatch: 5 });
    expect(batch.messages.map((m) => m.meta)).toEqual([undefined, JSON.stringify({ traceparent: TP })]);
    expect(code(() => parsePublishBody({ messages: [{ channel: "c", data: 1 }, { channel: "d", data: 2, meta: { n: 2 } }] }, { maxBatch: 5 }))).toBe("400 invalid_meta");
  });
});

describe("plainEnvelopeIn", () => {
  it("reads the $fanout form and nothing else", () => {
    expect(plainEnvelopeIn({ $fanout: 1, type: "order.created", meta: { source: "billing" }, data: { n: 1 } })).toEqual({
      type: "order.created",
      metaJson: '{"source":"billing"}',
      dataJson: '{"n":1}',
    });
    expect(plainEnvelopeIn({ $fanout: 1, data: null })).toEqual({ dataJson: "null" });
    for (const o of [
      { id: "e1", type: "order.created", timestamp: 1, source: "seed", data: { n: 1 } }, // the seed's shape: plain data
      { $fanout: 2, data: 1 },
      { $fanout: "1", data: 1 },
      { $fanout: 1 },
      { $fanout: 1, data: 1, id: "0-1-0" },
      { $fanout: 1, data: 1, ts: 5 },
      { $fanout: 1, data: 1, type: "a\nb" },
      { $fanout: 1, data: 1, meta: { n: 1 } },
    ]) {
      expect(plainEnvelopeIn(o as Record<string, unknown>), JSON.stringify(o)).toBeUndefined();
    }
  });
});
