import { envelopeJson } from "../protocol/envelope.js";
import type { Position } from "../protocol/position.js";
import type { Delivery } from "./broker/broker.js";
import { encodeEvent } from "./sse/frame.js";

/** A message encoded once for every client it goes to, with the relay cursor it was sent at. */
export interface Frame {
  delivery: Delivery;
  cursor: Position[];
  bytes: Buffer;
}

export function encodeDelivery(d: Delivery, cursor: string): Buffer {
  return encodeEvent({ id: cursor, event: d.type, data: envelopeJson(d.id, d.channel, d.pattern, d.type, d.dataJson, d.ts, d.metaJson) });
}

/**
 * A history entry of a channel added to an open stream with `since`: no `id` line, so the
 * stream's Last-Event-ID (a position in every partition) stays where it is.
 */
export function encodeHistory(d: Delivery): Buffer {
  return encodeEvent({ event: d.type, data: envelopeJson(d.id, d.channel, d.pattern, d.type, d.dataJson, d.ts) });
}
