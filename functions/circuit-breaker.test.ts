import { describe, expect, it } from "vitest";
import { FanoutError } from "../protocol/errors.js";
import { CircuitBreaker } from "./circuit-breaker.js";

const fail = () => Promise.reject(new Error("connection refused"));
const ok = () => Promise.resolve("ok");

async function status(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    return e instanceof FanoutError ? `${e.status} ${e.headers["Retry-After"]}` : String(e);
  }
}

describe("CircuitBreaker", () => {
  it("opens after `threshold` failures, fails fast with the time left, then lets one trial through", async () => {
    let now = 0;
    const b = new CircuitBreaker(2, 10_000, () => now);
    expect(await status(b.run("x", fail))).toBe("503 1");
    expect(await status(b.run("x", fail))).toBe("503 10");
    let called = false;
    now = 4_000;
    expect(await status(b.run("x", () => ((called = true), ok())))).toBe("503 6");
    expect(called).toBe(false);
    now = 10_001;
    // Half-open: the trial fails and the circuit re-opens for a full cooldown.
    expect(await status(b.run("x", fail))).toBe("503 10");
    expect(b.isOpen).toBe(true);
    now = 20_002;
    expect(await status(b.run("x", ok))).toBe("ok");
    expect(b.isOpen).toBe(false);
    expect(await status(b.run("x", fail))).toBe("503 1");
  });

  it("while the trial is in flight, other calls fail fast", async () => {
    let now = 0;
    const b = new CircuitBreaker(1, 1000, () => now);
    await status(b.run("x", fail));
    now = 1001;
    let release!: () => void;
    const trial = b.run("x", () => new Promise<string>((r) => (release = () => r("ok"))));
    expect(await status(b.run("x", ok))).toBe("503 1");
    release();
    expect(await trial).toBe("ok");
    expect(await status(b.run("x", ok))).toBe("ok");
  });
});
