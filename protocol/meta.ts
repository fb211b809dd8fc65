import { FanoutError } from "./errors.js";
import { isWellFormed } from "./names.js";

/**
 * Envelope metadata: a flat object of short strings (`source`, `correlation_id`,
 * `traceparent`, …) that travels beside `data` from the publisher to every subscriber, into
 * the log and back out on replay, untouched. Bounded so a message's metadata cannot grow the
 * log or the stream more than a few headers would.
 */
export const MAX_META_KEYS = 16;
export const MAX_META_KEY_CHARS = 64;
/** UTF-8 bytes of every key and value together. */
export const MAX_META_BYTES = 2048;

/**
 * Keys are identifiers (a letter or digit, then letters, digits, `_ . : -`): they map onto
 * header names and log fields in users' systems, and `__proto__` and friends cannot be one.
 */
const KEY = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;
/** U+0000–U+001F and U+007F: metadata is header-like text, never multi-line. */
const CONTROL = /[\u0000-\u001f\u007f]/;
/**
 * W3C Trace Context `traceparent`: version-traceid-parentid-flags, lowercase hex. Version
 * `ff` is invalid and all-zero ids are invalid; a future version may append `-…` fields.
 */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[\x21-\x7e]*)?$/;
/** The longest `traceparent` taken from a request header (a version-00 one is 55 characters). */
const MAX_TRACEPARENT_CHARS = 256;

const encoder = new TextEncoder();

export function isValidTraceparent(value: string): boolean {
  const m = TRACEPARENT.exec(value);
  if (!m || value.length > MAX_TRACEPARENT_CHARS) return false;
  const [, version, traceId, parentId, , rest] = m;
  if (version === "ff" || /^0+$/.test(traceId) || /^0+$/.test(parentId)) return false;
  // Version 00 is exactly 55 characters; only later versions may carry more fields.
  return version !== "00" || rest === undefined;
}

/** Why `value` is not valid metadata, or undefined when it is. */
export function metaProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return "must be an object of string values";
  const keys = Object.keys(value);
  if (keys.length > MAX_META_KEYS) return `has more than ${MAX_META_KEYS} keys`;
  let bytes = 0;
  for (const k of keys) {
    if (k.length > MAX_META_KEY_CHARS || !KEY.test(k)) {
      return `key ${JSON.stringify(k.slice(0, 80))} must be 1–${MAX_META_KEY_CHARS} characters of A–Z a–z 0–9 _ . : - starting with a letter or digit`;
    }
    const v = (value as Record<string, unknown>)[k];
    if (typeof v !== "string") return `.${k} must be a string`;
    if (v.length > MAX_META_BYTES) return `is larger than ${MAX_META_BYTES} bytes`;
    if (CONTROL.test(v) || !isWellFormed(v)) return `.${k} must be valid Unicode without control characters`;
    if (k === "traceparent" && !isValidTraceparent(v)) return ".traceparent is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)";
    bytes += k.length + encoder.encode(v).length;
    if (bytes > MAX_META_BYTES) return `is larger than ${MAX_META_BYTES} bytes`;
  }
  return undefined;
}

export function isValidMeta(value: unknown): value is Record<string, string> {
  return metaProblem(value) === undefined;
}

/**
 * Validates a publish's `meta` and returns it as JSON text (undefined for none: absent,
 * `null` or `{}`). A `traceparent` from the request header is added when the body has none
 * and the header is a valid one (an invalid header is ignored, as W3C Trace Context asks);
 * the limits apply to the result.
 */
export function checkMeta(value: unknown, field: string, headerTraceparent?: string): string | undefined {
  let meta: Record<string, unknown> | undefined;
  if (value !== undefined && value !== null) {
    if (typeof value !== "object" || Array.isArray(value)) throw new FanoutError(400, "invalid_meta", `${field} must be an object of string values`);
    meta = value as Record<string, unknown>;
  }
  if (headerTraceparent !== undefined && !(meta && "traceparent" in meta) && isValidTraceparent(headerTraceparent.trim())) {
    meta = { ...meta, traceparent: headerTraceparent.trim() };
  }
  if (meta === undefined || Object.keys(meta).length === 0) return undefined;
  const problem = metaProblem(meta);
  if (problem) throw new FanoutError(400, "invalid_meta", `${field} ${problem}`);
  return JSON.stringify(meta);
}
