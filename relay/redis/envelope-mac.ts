import { createHash, timingSafeEqual } from "node:crypto";

const sha1hex = (s: string): string => createHash("sha1").update(s, "utf8").digest("hex");

/**
 * The tag the publish script (protocol/publish-script.ts) puts on every envelope it
 * publishes: sha1(k .. sha1(k .. id \0 channel \0 ts)) in lowercase hex, `k` the partition's
 * secret. Computed here over the same bytes (channel names are valid UTF-8 by the API's rules).
 */
export function envelopeMac(secret: string, id: string, channel: string, ts: number): string {
  return sha1hex(secret + sha1hex(`${secret}${id}\u0000${channel}\u0000${ts}`));
}

export function macMatches(secret: string, id: string, channel: string, ts: number, mac: string): boolean {
  if (!/^[0-9a-f]{40}$/.test(mac)) return false;
  return timingSafeEqual(Buffer.from(envelopeMac(secret, id, channel, ts)), Buffer.from(mac));
}
