import { isValidMeta } from "./meta.js";
import { isValidType } from "./names.js";

/**
 * The envelope form a program publishing through plain Redis `PUBLISH` uses to give its
 * message a `type` and `meta`:
 *
 *     {"$fanout": 1, "type": "order.created", "meta": {"source": "billing"}, "data": {…}}
 *
 * Exactly these keys (`type` and `meta` optional, `data` required), `$fanout` the number 1,
 * `type` and `meta` under the publish API's rules. Anything else — an extra key, a bad type,
 * a `$fanout` of 2 — is plain data like every other payload, delivered whole. The form is
 * only a label: such a message is still live-only, with an `x-…` id and the relay's time, and
 * never moves a cursor (an `id` or `ts` in it is an extra key, so it is plain data).
 */
export const PLAIN_ENVELOPE_MARKER = "$fanout";

export interface PlainEnvelope {
  type?: string;
  metaJson?: string;
  dataJson: string;
}

const ALLOWED = new Set([PLAIN_ENVELOPE_MARKER, "type", "meta", "data"]);

export function plainEnvelopeIn(o: Record<string, unknown>): PlainEnvelope | undefined {
  if (o[PLAIN_ENVELOPE_MARKER] !== 1 || !("data" in o)) return undefined;
  for (const k of Object.keys(o)) if (!ALLOWED.has(k)) return undefined;
  if (o.type !== undefined && !isValidType(o.type)) return undefined;
  if (o.meta !== undefined && !isValidMeta(o.meta)) return undefined;
  const out: PlainEnvelope = { dataJson: JSON.stringify(o.data) };
  if (o.type !== undefined) out.type = o.type;
  if (o.meta !== undefined && Object.keys(o.meta).length > 0) out.metaJson = JSON.stringify(o.meta);
  return out;
}
