import { FanoutError } from "./errors.js";
import { patternWithin } from "./pattern-scope.js";

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

/** A glob whose language is exactly "starts with `prefix`": metacharacters escaped. */
function prefixGlob(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
}

/**
 * True when every channel `pattern` can match is reserved: such a subscription could only
 * ever carry relay markers. A pattern that also matches other channels (`*`) is allowed; the
 * relay never delivers markers through it.
 */
export function isReservedPattern(pattern: string, logPrefix: string): boolean {
  const reserved = reservedPrefix(logPrefix);
  const i = pattern.search(/[*?[\\]/);
  const literal = i < 0 ? pattern : pattern.slice(0, i);
  if (literal.startsWith(reserved)) return true;
  // Every match starts with `literal`: unless it could continue into the prefix, none is reserved.
  if (!reserved.startsWith(literal)) return false;
  return patternWithin(pattern, [prefixGlob(reserved)]);
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
