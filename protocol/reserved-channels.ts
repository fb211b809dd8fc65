import { FanoutError } from "./errors.js";
import { toBytes } from "./glob.js";
import { parseGlob } from "./pattern-scope.js";

/**
 * Channels under `<log prefix>:relay:` belong to the relays themselves (each relay's marker
 * channel, the barrier behind its subscriptions). Nobody else may subscribe or publish there:
 * a client that held one could see a relay's markers, and its leaving would take the relay's
 * own subscription with it.
 */
export function reservedPrefix(logPrefix: string): string {
  return `${logPrefix}:relay:`;
}

export function isReservedChannel(channel: string, logPrefix: string): boolean {
  return channel.startsWith(reservedPrefix(logPrefix));
}

/**
 * True when every channel `pattern` can match is reserved: such a subscription could only
 * ever carry relay markers. A pattern that also matches other channels (`*`) is allowed; the
 * relay never delivers markers through it.
 *
 * With the pattern read as Redis reads it (pattern-scope.ts parseGlob), every match starts
 * with the reserved prefix exactly when each of its first tokens is the prefix's byte and
 * nothing else: a `*` or a wider byte set there lets a match take another byte at that place.
 * (A pattern that matches nothing at all is not refused; it delivers nothing either way.)
 * Linear in the pattern, unlike the general inclusion check, since it runs on every stream.
 */
export function isReservedPattern(pattern: string, logPrefix: string): boolean {
  const reserved = toBytes(reservedPrefix(logPrefix));
  const bytes = toBytes(pattern);
  // Only the first tokens matter. Parsing stops at the cut as at the pattern's end, so when a
  // prefix parses into more tokens than needed, its first ones are the full parse's.
  let tokens = parseGlob(bytes.subarray(0, 4 * reserved.length + 16));
  if (tokens.length <= reserved.length) tokens = parseGlob(bytes);
  if (tokens.length < reserved.length) return false;
  for (let i = 0; i < reserved.length; i++) {
    const t = tokens[i];
    if (t.kind === "star" || t.set[reserved[i]] !== 1) return false;
    for (let b = 0; b < 256; b++) if (b !== reserved[i] && t.set[b] === 1) return false;
  }
  return true;
}

/** Refuses a subscription to reserved channels (400 `reserved_channel`). */
export function checkSubscribable(channels: readonly string[], patterns: readonly string[], logPrefix: string): void {
  for (const ch of channels) {
    if (isReservedChannel(ch, logPrefix)) {
      throw new FanoutError(400, "reserved_channel", `channel ${JSON.stringify(ch)} is reserved for the relays (${reservedPrefix(logPrefix)}*)`);
    }
  }
  for (const p of patterns) {
    if (isReservedPattern(p, logPrefix)) {
      throw new FanoutError(400, "reserved_channel", `pattern ${JSON.stringify(p)} can only match channels reserved for the relays (${reservedPrefix(logPrefix)}*)`);
    }
  }
}

/** Refuses a publish to a reserved channel (400 `reserved_channel`); all or nothing for a batch. */
export function checkPublishable(messages: readonly { channel: string }[], logPrefix: string): void {
  for (const m of messages) {
    if (isReservedChannel(m.channel, logPrefix)) {
      throw new FanoutError(400, "reserved_channel", `channel ${JSON.stringify(m.channel)} is reserved for the relays (${reservedPrefix(logPrefix)}*)`);
    }
  }
}
