/**
 * Redis glob matching (the one copy: the relay imports it through protocol/glob.ts, and the
 * SDK package, which ships on its own, uses it for tab sharing to hand each tab the
 * messages of its own patterns), ported byte for byte from `stringmatchlen` in Redis's util.c so the
 * embedded broker routes exactly as PSUBSCRIBE does: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`
 * (reversed ranges too), `\` escapes, an unclosed `[` and a trailing `\`.
 *
 * Redis compares raw bytes, and in ranges it compares C `char`s, which are signed on the
 * platforms Redis runs on; so range bounds use signed bytes, as Redis does.
 * Cost is bounded: the `skipLonger` early exit (CVE-2022-36021, Redis 7.0.9 and later) keeps
 * `*` runs polynomial, and nesting past 1000 stars fails as in Redis. `steps` counts the
 * loop iterations, so pattern-cost.ts's worst-case estimate can be checked against the real
 * matcher.
 */
const STAR = 0x2a, QMARK = 0x3f, LBRACKET = 0x5b, RBRACKET = 0x5d, BACKSLASH = 0x5c, CARET = 0x5e, DASH = 0x2d;

const encoder = new TextEncoder();

export function toBytes(s: string): Uint8Array {
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

/** True when `channel` matches the Redis glob `pattern` (both as UTF-8 bytes). */
export function globMatchBytes(pattern: Uint8Array, channel: Uint8Array): boolean {
  return matchImpl(pattern, 0, channel, 0, { skipLonger: false, steps: 0, limit: Infinity }, 0);
}

/** The matcher's loop iterations for one match: the work a PUBLISH costs per pattern. */
export function globMatchSteps(pattern: Uint8Array, channel: Uint8Array): number {
  const st: State = { skipLonger: false, steps: 0, limit: Infinity };
  matchImpl(pattern, 0, channel, 0, st, 0);
  return st.steps;
}

/**
 * A match that gives up after about `maxSteps` loop iterations (plus at most one pass over
 * the pattern): `match` is undefined when it gave up. For checks whose cost a caller has to
 * bound, like authorizing channels against globs it did not choose.
 */
export function globMatchBounded(pattern: Uint8Array, channel: Uint8Array, maxSteps: number): { match: boolean | undefined; steps: number } {
  const st: State = { skipLonger: false, steps: 0, limit: maxSteps };
  const match = matchImpl(pattern, 0, channel, 0, st, 0);
  return { match: match ? true : st.steps > maxSteps ? undefined : false, steps: st.steps };
}

export function globMatch(pattern: string, channel: string): boolean {
  return globMatchBytes(toBytes(pattern), toBytes(channel));
}
