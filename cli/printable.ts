// C0 and C1 controls, DEL and the Unicode line separators: a message or channel name printed
// raw could move the cursor, rewrite earlier lines or retitle the terminal, and published
// data is anyone's input.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// JSON.stringify escapes C0 controls inside strings; outside them only its own indentation
// newlines occur. These are what it leaves raw.
const LEFT_RAW_BY_JSON = /[\u007f-\u009f\u2028\u2029]/g;

/** A string as it may reach a terminal: itself, or its JSON form when it holds control characters. */
export function printable(s: string): string {
  return CONTROL.test(s) ? escapeJson(JSON.stringify(s)) : s;
}

/** Message data on one line: strings as they are (unless unsafe), anything else as JSON. */
export function printableData(data: unknown): string {
  if (typeof data === "string") return printable(data);
  return escapeJson(JSON.stringify(data) ?? String(data));
}

/**
 * JSON.stringify leaves DEL, C1 controls and U+2028/9 as they are; `\uXXXX` escapes keep the
 * text valid, equal JSON (they can only occur inside strings) and inert in a terminal.
 */
export function escapeJson(json: string): string {
  return json.replace(LEFT_RAW_BY_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
