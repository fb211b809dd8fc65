/**
 * SSE encoding in one place. `id` and `event` must not carry CR/LF (a line break would start
 * a new field: stream injection); callers validate, and this strips defensively. `data` is
 * split on every line break so each line gets its own `data:` prefix.
 */
const LINE_BREAK = /\r\n|\r|\n/;
const FIELD_UNSAFE = /[\r\n\u0000]/g;

export function encodeEvent(fields: { id?: string; event?: string; data: string }): Buffer {
  let s = "";
  if (fields.id !== undefined) s += `id: ${fields.id.replace(FIELD_UNSAFE, "")}\n`;
  if (fields.event !== undefined) s += `event: ${fields.event.replace(FIELD_UNSAFE, "")}\n`;
  for (const line of fields.data.split(LINE_BREAK)) s += `data: ${line}\n`;
  return Buffer.from(s + "\n");
}

export function encodeRetry(ms: number): Buffer {
  return Buffer.from(`retry: ${ms}\n\n`);
}

export const HEARTBEAT = Buffer.from(": hb\n\n");
