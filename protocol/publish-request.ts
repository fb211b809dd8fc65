import { FanoutError } from "./errors.js";
import { MAX_JSON_DEPTH, jsonDepthExceeds } from "./json-depth.js";
import { checkMeta } from "./meta.js";
import { checkChannel, checkType, isValidName } from "./names.js";

/** One message as a publisher asks for it, validated. `data` is kept as JSON text. */
export interface PublishMessage {
  channel: string;
  type?: string;
  /** The payload serialized once, so every hop embeds it without re-encoding. */
  data: string;
  /** Idempotency id: the same id on the same channel inside the dedupe window publishes once. */
  id?: string;
  /** Envelope metadata (protocol/meta.ts), validated, as JSON text; carried untouched to subscribers. */
  meta?: string;
}

export interface PublishResult {
  id: string;
  channel: string;
  receivers: number;
  duplicate: boolean;
}

export interface PublishLimits {
  maxBatch: number;
  /** The request's `traceparent` header: copied into each message's `meta` that has none. */
  traceparent?: string;
}

export const MAX_IDEMPOTENCY_ID = 256;

function parseMessage(item: unknown, where: string, traceparent: string | undefined): PublishMessage {
  if (item === null || typeof item !== "object" || Array.isArray(item)) {
    throw new FanoutError(400, "invalid_message", `${where} must be a JSON object`);
  }
  const m = item as Record<string, unknown>;
  const channel = checkChannel(m.channel, `${where}.channel`);
  if (!("data" in m) || m.data === undefined) {
    throw new FanoutError(400, "missing_data", `${where}.data is required (any JSON value)`);
  }
  const out: PublishMessage = { channel, data: JSON.stringify(m.data) };
  if (m.type !== undefined && m.type !== null) out.type = checkType(m.type);
  if (m.id !== undefined && m.id !== null) {
    // The id is part of a Redis key: a lone surrogate would reach Redis as U+FFFD and collide.
    if (!isValidName(m.id, MAX_IDEMPOTENCY_ID)) {
      throw new FanoutError(400, "invalid_id", `${where}.id must be a string of 1–${MAX_IDEMPOTENCY_ID} characters of valid UTF-8 without control characters`);
    }
    out.id = m.id;
  }
  const meta = checkMeta(m.meta, `${where}.meta`, traceparent);
  if (meta !== undefined) out.meta = meta;
  return out;
}

/**
 * Validates a decoded publish body: a single message or `{ "messages": [...] }`.
 * All or nothing: one bad item refuses the whole batch.
 */
export function parsePublishBody(body: unknown, limits: PublishLimits): { batch: boolean; messages: PublishMessage[] } {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new FanoutError(400, "invalid_body", "body must be a JSON object");
  }
  const b = body as Record<string, unknown>;
  if ("messages" in b) {
    if (!Array.isArray(b.messages)) throw new FanoutError(400, "invalid_batch", "messages must be an array");
    if (b.messages.length === 0) throw new FanoutError(400, "empty_batch", "messages must not be empty");
    if (b.messages.length > limits.maxBatch) {
      throw new FanoutError(400, "batch_too_large", `a batch holds at most ${limits.maxBatch} messages`);
    }
    return { batch: true, messages: b.messages.map((m, i) => parseMessage(m, `messages[${i}]`, limits.traceparent)) };
  }
  return { batch: false, messages: [parseMessage(b, "body", limits.traceparent)] };
}

/**
 * A number token too large for a double (`1e400`, a 400-digit integer) parses to ±Infinity,
 * which JSON.stringify writes as `null`: the message would change on its way. Only bodies
 * with an exponent of 3+ digits or a run of 309+ digits can hold one (strings may trigger
 * this too: it only picks the bodies worth a second, checking parse). One linear pass: a
 * regular expression like /\d{309}/ backtracks over long digit runs (seconds on 1 MiB).
 */
function mayHoldHugeNumber(text: string): boolean {
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      if (++digits >= 309) return true;
      continue;
    }
    digits = 0;
    if (c === 0x65 || c === 0x45) {
      let j = i + 1;
      if (text.charCodeAt(j) === 0x2b /* + */) j++;
      const start = j;
      while (j - start < 3 && text.charCodeAt(j) >= 0x30 && text.charCodeAt(j) <= 0x39) j++;
      if (j - start === 3) return true;
    }
  }
  return false;
}

function refuseInfinite(_key: string, v: unknown): unknown {
  if (typeof v === "number" && !Number.isFinite(v)) {
    throw new FanoutError(400, "invalid_number", "body holds a number too large to represent (beyond ±1.8e308)");
  }
  return v;
}

/**
 * Decodes a raw body with the size limit applied to bytes, not characters, and the nesting
 * limit applied before parsing: past a few thousand levels JSON.stringify (and the relay's
 * envelope parser) overflow the stack, so depth is bounded where the text arrives.
 */
export function decodeJsonBody(raw: Uint8Array, maxBytes: number, maxDepth = MAX_JSON_DEPTH): unknown {
  if (raw.byteLength > maxBytes) {
    throw new FanoutError(413, "payload_too_large", `body is larger than ${maxBytes} bytes`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw new FanoutError(400, "invalid_encoding", "body is not valid UTF-8");
  }
  if (jsonDepthExceeds(text, maxDepth)) {
    throw new FanoutError(400, "json_too_deep", `body nests arrays and objects more than ${maxDepth} levels deep`);
  }
  try {
    return mayHoldHugeNumber(text) ? JSON.parse(text, refuseInfinite) : JSON.parse(text);
  } catch (err) {
    if (err instanceof FanoutError) throw err;
    throw new FanoutError(400, "invalid_json", "body is not valid JSON");
  }
}
