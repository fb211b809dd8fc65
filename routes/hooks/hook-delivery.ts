import { FanoutError } from "../../protocol/errors.js";
import { sha256, toHex, utf8 } from "../constant-time.js";

/**
 * What names a delivery and when it happened, read only from bytes its signature covers.
 * Headers outside the signature (`X-GitHub-Delivery`, `X-Fanout-Delivery`) can be replaced
 * by anyone replaying a captured delivery, so they never decide whether a delivery is new.
 */
export interface SignedDelivery {
  /** The event's identity: the same key twice is the same event (a redelivery, or a replay). */
  key: string;
  /** When the provider says the event happened, ms since the epoch; undefined when it signs no time. */
  at?: number;
  /** How long after `at` a delivery is accepted; default: the hook dedupe window. */
  windowSeconds?: number;
  /** How far `at` may lie ahead of this clock (a sender's own clock); default: unbounded. */
  aheadSeconds?: number;
}

/** The store claim for an accepted delivery and how long it must be held. */
export interface DeliveryClaim {
  claim: string;
  ttlSeconds: number;
}

/**
 * Accepts a delivery for deduplication or refuses it as stale (401 `stale_delivery`).
 *
 * With a signed time, a delivery is accepted only within `window` of it, and its claim is
 * held until that window closes: inside it a replay is a duplicate, after it a replay is
 * stale, so no replay ever broadcasts. Without one, the claim is held for the dedupe window
 * and a replay after that broadcasts again (the residual window the docs name per provider).
 * The claim is a digest: bounded in size whatever the provider put in the key.
 */
export async function claimFor(provider: string, d: SignedDelivery, dedupeSeconds: number, now = Date.now()): Promise<DeliveryClaim> {
  const window = d.windowSeconds ?? dedupeSeconds;
  let ttlSeconds = window;
  if (d.at !== undefined) {
    const age = now - d.at;
    if (age > window * 1000) {
      throw new FanoutError(401, "stale_delivery", `this ${provider} delivery is from ${new Date(d.at).toISOString()}, more than ${window} s ago: refused as a possible replay`);
    }
    if (d.aheadSeconds !== undefined && -age > d.aheadSeconds * 1000) {
      throw new FanoutError(401, "stale_delivery", `this ${provider} delivery is signed for ${new Date(d.at).toISOString()}, more than ${d.aheadSeconds} s ahead of this clock`);
    }
    ttlSeconds = Math.max(1, Math.ceil((d.at + window * 1000 - now) / 1000));
  }
  return { claim: `${provider}:${toHex(await sha256(utf8(d.key)))}`, ttlSeconds };
}
