import { FanoutError } from "./errors.js";
import { checkChannel, checkType } from "./names.js";

/** One message as a publisher asks for it, validated. `data` is kept as JSON text. */
export interface PublishMessage {
  channel: string;
  type?: string;
  /** The payload serialized once, so every hop embeds it without re-encoding. */
  data: string;
  /** Idempotency id: the same id on the same channel inside the dedupe window publishes once. */
  id?: string;
}

export interface PublishResult {
  id: string;
  channel: string;
  receivers: number;
  duplicate: boolean;
}

export interface PublishLimits {
  maxBatch: number;
}

export const MAX_IDEMPOTENCY_ID = 256;

function parseMessage(item: unknown, where: string): PublishMessage {
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
    if (typeof m.id !== "string" || m.id.length === 0 || m.id.length > MAX_IDEMPOTENCY_ID || /[\u0000-\u001f\u007f]/.test(m.id)) {
      throw new FanoutError(400, "invalid_id", `${where}.id must be a string of 1–${MAX_IDEMPOTENCY_ID} characters without control characters`);
    }
    out.id = m.id;
  }
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
    return { batch: true, messages: b.messages.map((m, i) => parseMessage(m, `messages[${i}]`)) };
  }
  return { batch: false, messages: [parseMessage(b, "body")] };
}

/** Decodes a raw body with the size limit applied to bytes, not characters. */
export function decodeJsonBody(raw: Uint8Array, maxBytes: number): unknown {
  if (raw.byteLength > maxBytes) {
    throw new FanoutError(413, "payload_too_large", `body is larger than ${maxBytes} bytes`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw new FanoutError(400, "invalid_encoding", "body is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new FanoutError(400, "invalid_json", "body is not valid JSON");
  }
}
