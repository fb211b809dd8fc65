import { jsonDepthExceeds, MAX_JSON_DEPTH } from "./json-depth.js";
import { isValidMeta } from "./meta.js";
import { isValidType } from "./names.js";
import { parseMessageId } from "./position.js";

/** What subscribers receive as SSE `data` and plain Redis subscribers receive as the payload. */
export interface Envelope {
  id: string;
  channel: string;
  pattern?: string;
  type?: string;
  /** Publisher metadata (protocol/meta.ts), when given. */
  meta?: Record<string, string>;
  data: unknown;
  ts: number;
}

/**
 * Builds envelope JSON from parts, with `data` already serialized. The one writer of the
 * shape SSE clients see (the publish script builds the same fields in Lua for plain Redis
 * subscribers, plus its `mac`, which never reaches an SSE client: frames are built here).
 */
export function envelopeJson(id: string, channel: string, pattern: string | undefined, type: string | undefined, dataJson: string, ts: number, metaJson?: string): string {
  let s = `{"id":${JSON.stringify(id)},"channel":${JSON.stringify(channel)}`;
  if (pattern !== undefined) s += `,"pattern":${JSON.stringify(pattern)}`;
  if (type !== undefined) s += `,"type":${JSON.stringify(type)}`;
  if (metaJson !== undefined) s += `,"meta":${metaJson}`;
  return `${s},"data":${dataJson},"ts":${ts}}`;
}

/** A Redis payload shaped like one of ours (published through edge-fanout on `channel`). */
export interface ParsedEnvelope {
  id: string;
  type?: string;
  /** `meta` as JSON text, when the payload has one. */
  metaJson?: string;
  dataJson: string;
  ts: number;
  /** The publish script's authentication tag; the broker checks it (redis/envelope-mac.ts). */
  mac?: string;
}

/**
 * Deepest Redis payload read as JSON. An envelope wraps `data` in one more level; anything
 * deeper is not parsed at all, since `JSON.parse`/`JSON.stringify` recurse and throw a
 * RangeError at a few thousand levels (see json-depth.ts).
 */
const MAX_PAYLOAD_DEPTH = MAX_JSON_DEPTH + 1;

/**
 * Recognises an envelope written by edge-fanout. Anything else that arrives on a channel
 * (a plain PUBLISH from another program) is not one, and the caller wraps it instead.
 * Values a hostile publisher could use to break the stream (a type with a newline) fail the
 * check, so such a payload is delivered as plain data.
 */
export function parseEnvelope(payload: string, channel: string): ParsedEnvelope | undefined {
  const o = payloadObject(payload);
  return o && envelopeIn(o, channel);
}

/**
 * A payload that may be an envelope, read as JSON: the object, or undefined when it cannot
 * be one. A caller that goes on to deliver it as plain data reuses the object
 * (`JSON.stringify(o)` is what `plainDataJson` gives), so a payload is parsed once.
 */
export function payloadObject(payload: string): Record<string, unknown> | undefined {
  if (payload.length < 20 || payload.charCodeAt(0) !== 0x7b /* { */) return undefined;
  if (jsonDepthExceeds(payload, MAX_PAYLOAD_DEPTH)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
  return v as Record<string, unknown>;
}

/** The envelope fields of a payload's object (`payloadObject`), if it has the shape of one on `channel`. */
export function envelopeIn(o: Record<string, unknown>, channel: string): ParsedEnvelope | undefined {
  if (typeof o.id !== "string" || o.channel !== channel || !Number.isSafeInteger(o.ts) || !("data" in o)) return undefined;
  if (!parseMessageId(o.id)) return undefined;
  if (o.type !== undefined && !isValidType(o.type)) return undefined;
  if (o.mac !== undefined && typeof o.mac !== "string") return undefined;
  if (o.meta !== undefined && !isValidMeta(o.meta)) return undefined;
  const env: ParsedEnvelope = { id: o.id, type: o.type as string | undefined, dataJson: JSON.stringify(o.data), ts: o.ts as number, mac: o.mac as string | undefined };
  if (o.meta !== undefined) env.metaJson = JSON.stringify(o.meta);
  return env;
}

/**
 * Plain Redis payloads: JSON is delivered parsed, anything else as a string. JSON nested
 * deeper than edge-fanout reads is delivered as a string too (its text, unparsed).
 */
export function plainDataJson(payload: string): string {
  const t = payload.trim();
  if (t.length > 0 && !jsonDepthExceeds(t, MAX_PAYLOAD_DEPTH)) {
    try {
      return JSON.stringify(JSON.parse(t));
    } catch {
      /* not JSON: deliver as a string */
    }
  }
  return JSON.stringify(payload);
}
