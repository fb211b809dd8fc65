import { FanoutError } from "./errors.js";

/** U+0000–U+001F and U+007F: a CR or LF here would let a publisher inject SSE fields. */
const CONTROL = /[\u0000-\u001f\u007f]/;
const encoder = new TextEncoder();

export const MAX_CHANNEL_BYTES = 1024;
export const MAX_TYPE_CHARS = 128;

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
  if (/[\ud800-\udfff]/.test(value.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ""))) {
    throw new FanoutError(400, "invalid_channel", `${field} is not valid UTF-8 (lone surrogate)`);
  }
  return value;
}

/** Message types become the SSE `event:` field: 1–128 characters, no control characters. */
export function isValidType(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && !CONTROL.test(value) && [...value].length <= MAX_TYPE_CHARS;
}

export function checkType(value: unknown): string {
  if (isValidType(value)) return value;
  const control = typeof value === "string" && CONTROL.test(value);
  throw new FanoutError(400, "invalid_type", control ? "type must not contain control characters" : `type must be a string of 1–${MAX_TYPE_CHARS} characters`);
}
