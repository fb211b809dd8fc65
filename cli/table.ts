import { printable } from "./printable.js";

export type Cell = string | number | boolean | null | undefined;

/** Aligned columns: numbers to the right, everything else to the left; a header row when given. */
export function table(rows: Cell[][], header?: string[]): string[] {
  const text = [...(header ? [header] : []), ...rows].map((r) => r.map(cellText));
  const widths: number[] = [];
  for (const r of text) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const numeric = (ri: number, i: number) => (header ? ri > 0 && typeof rows[ri - 1][i] === "number" : typeof rows[ri][i] === "number");
  return text.map((r, ri) =>
    r
      .map((c, i) => (numeric(ri, i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd(),
  );
}

/** A cell as text: integers as they are, other numbers to two decimals, strings made printable. */
export function cellText(c: Cell): string {
  if (c === undefined || c === null) return "-";
  if (typeof c === "number") return Number.isInteger(c) ? String(c) : c.toFixed(2);
  return printable(String(c));
}
