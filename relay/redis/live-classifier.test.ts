import { describe, expect, it, vi } from "vitest";
import { plainDataJson } from "../../protocol/envelope.js";
import { LiveClassifier } from "./live-classifier.js";

describe("LiveClassifier", () => {
  it("reads a plain JSON object payload once and delivers it as plainDataJson would", () => {
    const live = new LiveClassifier(4, () => undefined);
    const payload = ' {"hello": "world", "n": [1, 2, {"x": null}]} \n';
    const parse = vi.spyOn(JSON, "parse");
    try {
      // Starts with a space: not an envelope candidate, plainDataJson alone parses it.
      expect(live.classify("c", undefined, payload)!.dataJson).toBe(plainDataJson(payload));
      parse.mockClear();
      const obj = '{"hello": "world", "n": [1, 2, {"x": null}], "id": "not-an-id"}';
      const d = live.classify("c", undefined, obj)!;
      expect(parse).toHaveBeenCalledTimes(1);
      expect(d.dataJson).toBe(plainDataJson(obj));
      expect(d.partition).toBeUndefined();
    } finally {
      parse.mockRestore();
    }
  });

  it("gives the copies of one publish the first copy's object, and a repeated route a new one", () => {
    const live = new LiveClassifier(4, () => undefined);
    const a = live.classify("c", undefined, "x");
    const b = live.classify("c", "c*", "x");
    const c = live.classify("c", "*", "x");
    expect(b).toBe(a);
    expect(c).toBe(a);
    const again = live.classify("c", "c*", "x");
    expect(again).not.toBe(a);
    live.interrupt();
    expect(live.classify("c", "*", "x")).not.toBe(again);
  });
});
