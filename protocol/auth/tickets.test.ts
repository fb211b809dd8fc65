import { describe, expect, it } from "vitest";
import { FanoutError } from "../errors.js";
import { Tickets, checkTicketScope } from "./tickets.js";
import type { TicketStore } from "./ticket-store.js";

class MapStore implements TicketStore {
  readonly m = new Map<string, string>();
  async put(k: string, v: string): Promise<void> {
    this.m.set(k, v);
  }
  async take(k: string): Promise<string | undefined> {
    const v = this.m.get(k);
    this.m.delete(k);
    return v;
  }
}

const opts = { defaultTtlSeconds: 30, maxTtlSeconds: 300, maxSubscriptions: 5, patternLimits: { maxStars: 8, maxBytes: 256, maxCost: 100_000, maxConnectionCost: 1_000_000 } };

async function status(f: () => unknown): Promise<number | undefined> {
  try {
    await f();
    return undefined;
  } catch (e) {
    return (e as FanoutError).status;
  }
}

describe("Tickets", () => {
  it("issues an opaque ticket, stores only its digest, and redeems it once", async () => {
    const store = new MapStore();
    const t = new Tickets(store, opts);
    const { ticket, expiresIn } = await t.issue({ channels: ["a"], patterns: ["b:*"] }, 30);
    expect(ticket).toMatch(/^fto_[A-Za-z0-9_-]{43}$/);
    expect(expiresIn).toBe(30);
    expect([...store.m.keys()].join()).not.toContain(ticket.slice(4));
    expect(await t.redeem(ticket)).toEqual({ channels: ["a"], patterns: ["b:*"] });
    expect(await status(() => t.redeem(ticket))).toBe(401);
    expect(await status(() => t.redeem("fto_" + "A".repeat(43)))).toBe(401);
    expect(await status(() => t.redeem("garbage"))).toBe(401);
  });

  it("refuses a ticket past its expiry even if the store still has it", async () => {
    const store = new MapStore();
    const t = new Tickets(store, opts);
    const { ticket } = await t.issue({ channels: ["a"], patterns: [] }, 1);
    const [k, v] = [...store.m][0];
    store.m.set(k, JSON.stringify({ ...JSON.parse(v), e: Date.now() - 1 }));
    expect(await status(() => t.redeem(ticket))).toBe(401);
  });

  it("reads a store value that is not a ticket as no ticket (401), never a crash", async () => {
    for (const junk of ["not json", "null", "[]", '{"c":"a","p":[],"e":1e15}', '{"c":[1],"p":[],"e":1e15}', '{"c":[],"p":[]}']) {
      const store = new MapStore();
      const t = new Tickets(store, opts);
      const { ticket } = await t.issue({ channels: ["a"], patterns: [] }, 30);
      store.m.set([...store.m.keys()][0], junk);
      expect(await status(() => t.redeem(ticket)), junk).toBe(401);
    }
  });

  it("never lets a ticket outlive the token that minted it", async () => {
    const store = new MapStore();
    const t = new Tickets(store, opts);
    const notAfterMs = Date.now() + 6_000;
    const { expiresIn } = await t.issue({ channels: ["a"], patterns: [] }, 300, { notAfterMs });
    expect(expiresIn).toBeLessThanOrEqual(6);
    expect(JSON.parse([...store.m.values()][0]).e).toBeLessThanOrEqual(notAfterMs);
    // A token with less than a second left (or inside its clock-skew grace) mints nothing.
    expect(await status(() => t.issue({ channels: ["a"], patterns: [] }, 300, { notAfterMs: Date.now() + 500 }))).toBe(401);
    expect(await status(() => t.issue({ channels: ["a"], patterns: [] }, 300, { notAfterMs: Date.now() - 3_000 }))).toBe(401);
    expect((await t.issue({ channels: ["a"], patterns: [] }, 300, {})).expiresIn).toBe(300);
  });

  it("validates ticket requests", () => {
    const t = new Tickets(new MapStore(), opts);
    expect(t.parseRequest({ channels: ["a", "a"], patterns: ["p:*"] })).toEqual({ scope: { channels: ["a"], patterns: ["p:*"] }, ttlSeconds: 30 });
    expect(t.parseRequest({ channels: ["a"], ttl: 5 }).ttlSeconds).toBe(5);
    for (const bad of [null, [], "x", {}, { channels: [] }, { channels: "a" }, { channels: [""] }, { channels: ["a\n"] }, { channels: ["a"], ttl: 0 }, { channels: ["a"], ttl: 301 }, { channels: ["a"], ttl: 1.5 }, { channels: ["1", "2", "3", "4", "5", "6"] }]) {
      expect(() => t.parseRequest(bad), JSON.stringify(bad)).toThrow(FanoutError);
    }
  });

  it("limits a subscription to the ticket's channels, or what its patterns cover", () => {
    const scope = { channels: ["room:*", "a"], patterns: ["user:42:*"] };
    expect(() => checkTicketScope(scope, ["a", "room:*", "user:42:x"], ["user:42:*", "user:42:n*"])).not.toThrow();
    // A listed channel that looks like a glob is a literal channel, not a grant.
    expect(() => checkTicketScope(scope, ["room:1"], [])).toThrow(/room:1/);
    expect(() => checkTicketScope(scope, [], ["room:*"])).toThrow(FanoutError);
    expect(() => checkTicketScope(scope, [], ["user:*"])).toThrow(FanoutError);
    expect(() => checkTicketScope(scope, ["b"], [])).toThrow(FanoutError);
  });
});
