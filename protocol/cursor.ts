import { type Position, ZERO } from "./position.js";

/**
 * The SSE `id` (and Last-Event-ID): one position per log partition, so a single id resumes a
 * stream multiplexing any channels and patterns. Clients treat it as opaque.
 *
 * Format: partitions joined by `_`, each `<ms base36>` with `.<seq base36>` when seq > 0,
 * `0` for "nothing yet". Four partitions cost about 40 bytes.
 */
export type Cursor = Position[];

function part(p: Position): string {
  if (p.ms === 0 && p.seq === 0) return "0";
  return p.seq === 0 ? p.ms.toString(36) : `${p.ms.toString(36)}.${p.seq.toString(36)}`;
}

/** Cached per-partition encodings: a message changes one partition, the rest are reused. */
export class CursorEncoder {
  private readonly parts: string[];
  constructor(partitions: number) {
    this.parts = Array.from({ length: partitions }, () => "0");
  }
  set(partition: number, p: Position): void {
    this.parts[partition] = part(p);
  }
  toString(): string {
    return this.parts.join("_");
  }
}

export function formatCursor(c: Cursor): string {
  return c.map(part).join("_");
}

export type CursorParse =
  | { ok: true; cursor: Cursor }
  | { ok: false; reason: "malformed" | "unknown" };

const PART = /^([0-9a-z]{1,11})(?:\.([0-9a-z]{1,11}))?$/;

/** Parses a Last-Event-ID. Never throws: garbage is "malformed", a different layout "unknown". */
export function parseCursor(s: string, partitions: number): CursorParse {
  if (s.length > 16 * 64) return { ok: false, reason: "malformed" };
  const raw = s.split("_");
  const out: Cursor = [];
  for (const r of raw) {
    const m = PART.exec(r);
    if (!m) return { ok: false, reason: "malformed" };
    const ms = parseInt(m[1], 36);
    const seq = m[2] ? parseInt(m[2], 36) : 0;
    if (!Number.isSafeInteger(ms) || !Number.isSafeInteger(seq)) return { ok: false, reason: "malformed" };
    out.push(ms === 0 && seq === 0 ? ZERO : { ms, seq });
  }
  if (out.length !== partitions) return { ok: false, reason: "unknown" };
  return { ok: true, cursor: out };
}
