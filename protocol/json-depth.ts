/**
 * Nesting depth of JSON text, measured without parsing it. `JSON.parse` and `JSON.stringify`
 * recurse, so a deep enough document (a few thousand `[`) throws a RangeError from inside them,
 * wherever in the process that happens; bounding depth before parsing keeps that out of reach.
 *
 * Brackets inside strings do not count. Malformed text is measured as far as it goes: the
 * caller's parser still decides whether it is JSON at all.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c /* \ */) i++;
      else if (ch === 0x22 /* " */) inString = false;
    } else if (ch === 0x22) {
      inString = true;
    } else if (ch === 0x5b /* [ */ || ch === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (ch === 0x5d /* ] */ || ch === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

/**
 * Deepest nesting edge-fanout accepts in a message (publish bodies, and Redis payloads read as
 * JSON). Far below where V8's recursion gives out, far above what real events use.
 */
export const MAX_JSON_DEPTH = 64;
