import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { main as chat } from "../examples/chat.js";
import { main as microservices } from "../examples/microservices.js";
import { main as cacheInvalidation } from "../examples/cache-invalidation.js";

// Each example's main() runs its scenario against a relay configured like `npm start`, and ends by itself.
describe("examples/", () => {
  let r: RunningRelay;
  const lines: string[] = [];
  const log = (l: string) => void lines.push(l);
  beforeAll(async () => {
    r = await startRelay();
  });
  afterAll(async () => {
    await r?.stop();
  });

  it("chat.ts: rooms, DMs, presence and a pattern-subscribed moderator", async () => {
    const out = await chat({ baseUrl: r.base, log });
    expect(out.alice).toContain("[general] bob joined");
    expect(out.alice).toContain("[general] alice: hi bob!");
    expect(out.alice).toContain("(dm) bob: psst, lunch?");
    expect(out.alice.at(-1)).toBe("[general] bob left");
    expect(out.alice.some((l) => l.includes("anyone here?"))).toBe(false);
    expect(out.bob).toContain("[random] bob: anyone here?");
    expect(out.bob).toContain("[general] alice: hi bob!");
    expect(out.bob.some((l) => l.includes("(dm)"))).toBe(false);
    // Alice learnt of bob from his join, and bob of alice from her "here" reply.
    expect(out.roster).toEqual({ alice: ["alice", "bob"], bob: ["alice", "bob"] });
    expect(out.afterLeave).toEqual(["alice"]);
    expect(out.moderator).toContain("chat:random chat.message");
    expect(out.moderator.filter((l) => l.includes("presence.leave"))).toHaveLength(3);
  });

  it("microservices.ts: pattern subscribers process each order event once, across a restart from an old checkpoint", async () => {
    const out = await microservices({ baseUrl: r.base, log });
    expect(out.retriedWasDuplicate).toBe(true);
    expect(out.stock).toEqual({ "sku-1": 10, "sku-2": 4 });
    expect(out.inventorySkipped).toBe(1);
    expect(out.emails).toEqual(["ann@example.com: order.created o-1", "bo@example.com: order.created o-2", "ann@example.com: order.cancelled o-1"]);
  });

  it("cache-invalidation.ts: drops the invalidated keys, tagged keys and paths from its local cache", async () => {
    const out = await cacheInvalidation({ baseUrl: r.base, log });
    expect(out.broadcasts).toHaveLength(1);
    expect(out.broadcasts[0]).toMatchObject({ scope: "default", keys: ["product:1"], tags: ["catalog"], paths: ["/about"] });
    expect(out.remaining).toEqual(["user:9"]);
    // The relay does not serve POST /v1/invalidate yet (only functions/ does); see the example's fallback.
    expect(["invalidate", "publish"]).toContain(out.route);
  });
});
