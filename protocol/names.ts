import { FanoutError } from "./errors.js";

/** U+0000–U+001F and U+007F: a CR or LF here would let a publisher inject SSE fields. */
const CONTROL = /[\u0000-\u001f\u007f]/;
/**
 * A UTF-16 surrogate not part of a pair. With the `u` flag a pair reads as one code point,
 * so only lone halves match. A lone surrogate has no UTF-8 form: on its way to Redis it
 * becomes U+FFFD, so `"k\ud800"` and `"k\udbff"` would name the same key.
 */
const LONE_SURROGATE = /\p{Cs}/u;
const encoder = new TextEncoder();

export const MAX_CHANNEL_BYTES = 1024;
export const MAX_TYPE_CHARS = 128;

/** True when the string has a UTF-8 form, i.e. holds no lone surrogate. */
export function isWellFormed(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}

/** Channel names (and patterns) are 1–1024 bytes of UTF-8 without control characters. */
export function checkChannel(value: unknown, field = "channel"): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new FanoutError(400, "invalid_channel", `${field} must be a non-empty string`);
  }
  if (CONTROL.test(value)) {
    throw new FanoutError(400, "invalid_channel", `${field} must not contain control characters`);
  }
  if (value.length > MAX_CHANNEL_BYTES || encoder.encode(value).length > MAX_CHANNEL_BYTES) {
    throw new FanoutError(400, "invalid_channel", `${field} is longer than ${MAX_CHANNEL_BYTES} bytes`);
  }
  if (!isWellFormed(value)) {
    throw new FanoutError(400, "invalid_channel", `${field} is not valid UTF-8 (lone surrogate)`);
  }
  return value;
}

/** Message types become the SSE `event:` field: 1–128 characters, no control characters, valid UTF-8. */
export function isValidType(value: unknown): value is string {
  // Two UTF-16 units per character at most: longer strings are refused before being split.
  return typeof value === "string" && value.length > 0 && value.length <= 2 * MAX_TYPE_CHARS && !CONTROL.test(value) && isWellFormed(value) && [...value].length <= MAX_TYPE_CHARS;
}

export function checkType(value: unknown): string {
  if (isValidType(value)) return value;
  const why =
    typeof value !== "string" || value.length === 0 || value.length > 2 * MAX_TYPE_CHARS || [...value].length > MAX_TYPE_CHARS
      ? `type must be a string of 1–${MAX_TYPE_CHARS} characters`
      : CONTROL.test(value)
        ? "type must not contain control characters"
        : "type is not valid UTF-8 (lone surrogate)";
  throw new FanoutError(400, "invalid_type", why);
}

/**
 * A short name that reaches Redis as a string (idempotency id, invalidation item): 1–`max`
 * characters, valid UTF-8, and without control characters unless `allowControl`.
 */
export function isValidName(value: unknown, max: number, allowControl = false): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= max && (allowControl || !CONTROL.test(value)) && isWellFormed(value);
}
