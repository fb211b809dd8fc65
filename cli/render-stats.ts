import { cellText, table, type Cell } from "./table.js";

/** Maps of name → subscriber count; everything else is counters and state. */
const NAME_MAPS = new Set(["channels", "patterns"]);

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isScalar(v: unknown): v is Cell {
  return v === null || ["string", "number", "boolean"].includes(typeof v);
}

/**
 * `/v1/stats` (one relay or the fleet) as text: its counters as `key value` rows, each list
 * of relays as a table, channels and patterns by subscriber count (the `top` largest; 0: all).
 * It reads the shape it gets rather than a fixed list of fields, so counters a relay adds
 * show up without a CLI change.
 */
export function renderStats(body: Json, top: number): string[] {
  const summary: Cell[][] = [];
  const sections: string[][] = [];
  const walk = (obj: Json, prefix: string) => {
    for (const [k, v] of Object.entries(obj)) {
      const path = prefix + k;
      if (NAME_MAPS.has(k) && isObject(v)) sections.push(nameTable(path, v, top));
      else if (isObject(v)) walk(v, `${path}.`);
      else if (Array.isArray(v) && v.every(isObject)) sections.push(objectTable(path, v));
      else if (Array.isArray(v)) summary.push([path, v.map(String).join(", ")]);
      else if (isScalar(v)) summary.push([path, v]);
    }
  };
  walk(body, "");
  // Key and value, both left-aligned: values of mixed kinds read better that way.
  const out = table(summary.map(([k, v]) => [k, cellText(v)]));
  for (const s of sections) out.push("", ...s);
  return out;
}

function nameTable(title: string, map: Json, top: number): string[] {
  const noun = title.endsWith("patterns") ? "PATTERN" : "CHANNEL";
  const entries = Object.entries(map)
    .map(([name, n]) => [name, typeof n === "number" ? n : Number(n)] as [string, number])
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  if (entries.length === 0) return [`${title}: none`];
  const shown = top > 0 ? entries.slice(0, top) : entries;
  const lines = table(shown, [noun, "SUBSCRIBERS"]);
  if (shown.length < entries.length) lines.push(`… ${entries.length - shown.length} more ${title} (--top 0 shows all)`);
  return lines;
}

/** A list of objects (the fleet's relays): one row each, a column per scalar field (nested ones as `a.b`). */
function objectTable(title: string, items: Json[]): string[] {
  if (items.length === 0) return [`${title}: none`];
  const rows = items.map((item) => flatten(item, ""));
  const columns = [...new Set(rows.flatMap((r) => [...r.keys()]))];
  return [`${title}:`, ...table(rows.map((r) => columns.map((c) => r.get(c))), columns.map((c) => c.toUpperCase()))];
}

function flatten(obj: Json, prefix: string, into = new Map<string, Cell>()): Map<string, Cell> {
  for (const [k, v] of Object.entries(obj)) {
    if (NAME_MAPS.has(k) && isObject(v)) continue; // one relay's names belong in the totals, not in a column each
    if (isObject(v)) flatten(v, `${prefix}${k}.`, into);
    else if (isScalar(v)) into.set(prefix + k, v);
    else if (Array.isArray(v) && v.every(isScalar)) into.set(prefix + k, v.map(String).join(","));
  }
  return into;
}
