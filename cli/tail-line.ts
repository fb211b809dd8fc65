import type { Envelope } from "../client/envelope.js";
import { escapeJson, printable, printableData } from "./printable.js";

/** `time channel [(pattern)] type data`, one line whatever the data holds. */
export function tailLine(e: Envelope): string {
  const time = Number.isFinite(e.ts) ? new Date(e.ts).toISOString() : "-";
  const via = e.pattern !== undefined ? ` (${printable(e.pattern)})` : "";
  return `${time} ${printable(e.channel)}${via} ${printable(e.type ?? "message")} ${printableData(e.data)}`;
}

/** `--json`: the envelope as the relay sent it, one per line. */
export function tailJson(e: Envelope): string {
  return escapeJson(JSON.stringify(e));
}
