import { describe, expect, it } from "vitest";
import { thrownCode as code } from "../test/support/thrown.js";
import { MAX_JSON_DEPTH } from "./json-depth.js";
import { decodeJsonBody, parsePublishBody } from "./publish-request.js";

const utf8 = (s: string) => new TextEncoder().encode(s);

describe("decodeJsonBody", () => {
  it("bounds nesting before parsing: MAX_JSON_DEPTH levels pass, one more is 400 json_too_deep", () => {
    const at = (d: number) => utf8("[".repeat(d) + "]".repeat(d));
    expect(code(() => decodeJsonBody(at(MAX_JSON_DEPTH), 1 << 20))).toBeUndefined();
    expect(code(() => decodeJsonBody(at(MAX_JSON_DEPTH + 1), 1 << 20))).toBe("400 json_too_deep");
    // Deep enough to overflow JSON.stringify's recursion: refused, not thrown as RangeError.
    expect(code(() => decodeJsonBody(at(100_000), 1 << 20))).toBe("400 json_too_deep");
    expect(code(() => decodeJsonBody(utf8(`{"a":"${"[{".repeat(5000)}"}`), 1 << 20))).toBeUndefined();
  });

  it("refuses numbers that do not fit a double, and only those", () => {
    expect(code(() => decodeJsonBody(utf8("[1e309]"), 1024))).toBe("400 invalid_number");
    expect(code(() => decodeJsonBody(utf8("[-1E+400]"), 1024))).toBe("400 invalid_number");
    expect(code(() => decodeJsonBody(utf8(`{"n":${"1".repeat(400)}}`), 1024))).toBe("400 invalid_number");
    expect(decodeJsonBody(utf8(`[1e308,1e-400,"1e999",${"1".repeat(300)}]`), 1024)).toEqual([1e308, 0, "1e999", Number("1".repeat(300))]);
    expect(code(() => decodeJsonBody(utf8("[1e999"), 1024))).toBe("400 invalid_json");
  });
});

describe("parsePublishBody", () => {
  const limits = { maxBatch: 10 };
  it("refuses lone surrogates in type and id, accepts pairs", () => {
    for (const bad of ["k\ud800", "k\udbff", "\udc00", "a\ude00b"]) {
      expect(code(() => parsePublishBody({ channel: "c", data: 1, type: bad }, limits))).toBe("400 invalid_type");
      expect(code(() => parsePublishBody({ channel: "c", data: 1, id: bad }, limits))).toBe("400 invalid_id");
      expect(code(() => parsePublishBody({ channel: bad, data: 1 }, limits))).toBe("400 invalid_channel");
    }
    const ok = parsePublishBody({ channel: "c\ud83d\ude00", data: "\ud800", type: "\ud83d\ude00", id: "k\ud83d\ude00" }, limits);
    expect(ok.messages[0]).toEqual({ channel: "c\ud83d\ude00", data: '"\\ud800"', type: "\ud83d\ude00", id: "k\ud83d\ude00" });
  });
});

describe("decodeJsonBody on long digit runs", () => {
  it("tells finite long numbers from infinite ones", () => {
    // ~1 MiB of 308-digit numbers (a backtracking /\d{309}/ hint took 1.2 s on this).
    const runs = `[${Array.from({ length: 3300 }, () => "1".repeat(308)).join(",")}]`;
    const parsed = decodeJsonBody(utf8(runs), 2 << 20) as number[];
    expect(parsed).toHaveLength(3300);
    expect(code(() => decodeJsonBody(utf8(`[${"1".repeat(308)},${"1".repeat(309)}]`), 4096))).toBeUndefined();
    expect(code(() => decodeJsonBody(utf8(`[${"1".repeat(308)},${"9".repeat(309)}]`), 4096))).toBe("400 invalid_number");
    expect(code(() => decodeJsonBody(utf8(`{"e":1e+308,"x":2E+308}`), 4096))).toBe("400 invalid_number");
    expect(code(() => decodeJsonBody(utf8(`[${"1".repeat(300)}.${"0".repeat(400)}]`), 4096))).toBeUndefined();
  });
});
