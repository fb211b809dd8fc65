/**
 * Redis glob matching (`*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\` escapes) on UTF-8 bytes, as
 * PSUBSCRIBE matches: a copy of the relay's matcher (protocol/glob.ts, ported from Redis's
 * `stringmatchlen`), because the SDK package ships on its own. Tab sharing uses it to hand
 * each tab the messages of its own patterns out of the shared stream.
 */
const STAR = 0x2a, QMARK = 0x3f, LBRACKET = 0x5b, RBRACKET = 0x5d, BACKSLASH = 0x5c, CARET = 0x5e, DASH = 0x2d;

const encoder = new TextEncoder();

function toBytes(s: string): Uint8Array {
  return encoder.encode(s);
}

const signed = (b: number): number => (b > 127 ? b - 256 : b);

interface State {
  skipLonger: boolean;
  /** Loop iterations so far (outer, `*` collapse and scan, class scan, trailing `*` skip). */
  steps: number;
  /** Past this many steps a `*` scan gives up, and with it the whole match (undecided). */
  limit: number;
}

function matchImpl(p: Uint8Array, pi: number, s: Uint8Array, si: number, st: State, nesting: number): boolean {
  if (nesting > 1000) return false;
  let plen = p.length - pi;
  let slen = s.length - si;
  while (plen > 0 && slen > 0) {
    st.steps++;
    const c = p[pi];
    if (c === STAR) {
      while (plen > 1 && p[pi + 1] === STAR) {
        st.steps++;
        pi++;
        plen--;
      }
      if (plen === 1) return true;
      while (slen > 0) {
        st.steps++;
        if (matchImpl(p, pi + 1, s, si, st, nesting + 1)) return true;
        if (st.skipLonger) return false;
        if (st.steps > st.limit) {
          // Only `*` scans repeat work: giving up here unwinds every scan above at once.
          st.skipLonger = true;
          return false;
        }
        si++;
        slen--;
      }
      st.skipLonger = true;
      return false;
    } else if (c === QMARK) {
      si++;
      slen--;
    } else if (c === LBRACKET) {
      pi++;
      plen--;
      const not = plen > 0 && p[pi] === CARET;
      if (not) {
        pi++;
        plen--;
      }
      let match = false;
      for (;;) {
        st.steps++;
        if (plen >= 2 && p[pi] === BACKSLASH) {
          pi++;
          plen--;
          if (p[pi] === s[si]) match = true;
        } else if (plen > 0 && p[pi] === RBRACKET) {
          break;
        } else if (plen === 0) {
          // Unclosed class: step back so the shared `pi++` below lands at the end.
          pi--;
          plen++;
          break;
        } else if (plen >= 3 && p[pi + 1] === DASH) {
          let start = signed(p[pi]);
          let end = signed(p[pi + 2]);
          const ch = signed(s[si]);
          if (start > end) [start, end] = [end, start];
          pi += 2;
          plen -= 2;
          if (ch >= start && ch <= end) match = true;
        } else if (p[pi] === s[si]) {
          match = true;
        }
        pi++;
        plen--;
      }
      if (not) match = !match;
      if (!match) return false;
      si++;
      slen--;
    } else {
      if (c === BACKSLASH && plen >= 2) {
        pi++;
        plen--;
      }
      if (p[pi] !== s[si]) return false;
      si++;
      slen--;
    }
    pi++;
    plen--;
    if (slen === 0) {
      while (plen > 0 && p[pi] === STAR) {
        st.steps++;
        pi++;
        plen--;
      }
      break;
    }
  }
  return plen === 0 && slen === 0;
}

/** True when `channel` matches the Redis glob `pattern`. */
export function globMatch(pattern: string, channel: string): boolean {
  return matchImpl(toBytes(pattern), 0, toBytes(channel), 0, { skipLonger: false, steps: 0, limit: Infinity }, 0);
}
