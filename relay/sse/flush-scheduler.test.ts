import { describe, expect, it } from "vitest";
import { FlushScheduler, type Flushable } from "./flush-scheduler.js";

/** A connection as the scheduler sees it, recording what happened to it. */
function connection(flush: () => void): Flushable & { flushed: number; destroyed?: string } {
  const c = {
    flushed: 0,
    destroyed: undefined as string | undefined,
    flush() {
      flush();
      c.flushed++;
    },
    destroy(reason: "error") {
      c.destroyed = reason;
    },
  };
  return c;
}

describe("FlushScheduler", () => {
  it("ends a connection whose flush throws, and still flushes the others of the pass (nothing escapes the timer)", async () => {
    const s = new FlushScheduler(10);
    const bad = connection(() => {
      throw new Error("write after end");
    });
    const good = connection(() => undefined);
    s.schedule(bad);
    s.schedule(good);
    await new Promise((r) => setTimeout(r, 20));
    expect(bad.destroyed).toBe("error");
    expect(good.flushed).toBe(1);
    // The scheduler keeps working after it.
    s.schedule(good);
    await new Promise((r) => setTimeout(r, 20));
    expect(good.flushed).toBe(2);
  });
});
