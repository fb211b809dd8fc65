import { describe, expect, it } from "vitest";
import { renderStats } from "./render-stats.js";

describe("renderStats", () => {
  it("renders a fleet answer: totals as rows, relays as a table (no column per channel), channels by subscribers", () => {
    const fleet = {
      scope: "fleet",
      totals: { relays: 2, connections: 5, channels: { big: 4, small: 1 } },
      relays: [
        { id: "relay-a", state: "ready", connections: 3, rates: { inPerSecond: 1.5 }, channels: { big: 3 } },
        { id: "relay-b", state: "draining", connections: 2, memory: { rssBytes: 1024 } },
      ],
    };
    expect(renderStats(fleet, 20)).toEqual([
      "scope               fleet",
      "totals.relays       2",
      "totals.connections  5",
      "",
      "CHANNEL  SUBSCRIBERS",
      "big                4",
      "small              1",
      "",
      "relays:",
      "ID       STATE     CONNECTIONS  RATES.INPERSECOND  MEMORY.RSSBYTES",
      "relay-a  ready               3               1.50  -",
      "relay-b  draining            2  -                             1024",
    ]);
  });

  it("shows the top N names, largest first, and says how many it left out", () => {
    const lines = renderStats({ channels: { a: 1, b: 3, c: 2 }, patterns: {} }, 2);
    expect(lines).toEqual(["", "CHANNEL  SUBSCRIBERS", "b                  3", "c                  2", "… 1 more channels (--top 0 shows all)", "", "patterns: none"]);
  });

  it("makes names and values printable", () => {
    const lines = renderStats({ note: "a\u001b[2Jb", channels: { "x\u009by": 1 } }, 0);
    expect(lines.join("\n")).not.toMatch(/[\u001b\u009b]/);
    expect(lines[0]).toContain('"a\\u001b[2Jb"');
  });
});
