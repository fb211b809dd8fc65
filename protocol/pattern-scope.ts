/**
 * Subscriber authorization for glob patterns: may a client holding the `allowed` globs
 * subscribe to `pattern`? Only if every channel the pattern can match is matched by one of
 * the allowed globs, i.e. L(pattern) ⊆ L(allowed₁) ∪ … ∪ L(allowedₙ), decided over raw bytes
 * (a plain Redis PUBLISH can name any byte string, so the check does not lean on our
 * channel-name rules).
 *
 * Each glob is parsed into tokens exactly as `stringmatchlen` reads it (see glob.ts; the
 * differential test in glob.test.ts checks this parse against a real redis-server): a `*`
 * run, or a set of bytes that matches one byte (a literal, an escape, `?`, a class with its
 * quirks — `[]` is empty, `[a-]` takes `]` as a range end, an unclosed `[` runs to the end,
 * ranges compare signed bytes). On non-empty channels Redis matches exactly the regular
 * language of that token sequence (its `skipLonger` cut-off only prunes failing searches);
 * the empty channel is matched by the empty pattern alone, and channels are never empty.
 *
 * Inclusion is decided on the product of the pattern's automaton with the subset
 * construction of the allowed globs' automata, over the byte classes the globs distinguish.
 * The answer is exact within a work budget; past it, or for anything outside the model
 * above, the answer is `false` (refuse).
 */
import { FanoutError } from "./errors.js";
import { globMatchBounded, toBytes } from "./glob.js";

const STAR = 0x2a, QMARK = 0x3f, LBRACKET = 0x5b, RBRACKET = 0x5d, BACKSLASH = 0x5c, CARET = 0x5e, DASH = 0x2d;

/** One step of a glob: a `*` run, or a 256-entry membership table matching exactly one byte. */
export type GlobToken = { readonly kind: "star" } | { readonly kind: "byte"; readonly set: Uint8Array };

const STAR_TOKEN: GlobToken = { kind: "star" };
/** Shared tables for `?` and single literal bytes (never mutated), so equal sets are one object. */
const ANY = new Uint8Array(256).fill(1);
const SINGLE = Array.from({ length: 256 }, (_, b) => {
  const set = new Uint8Array(256);
  set[b] = 1;
  return set;
});
const SINGLE_BYTE = new Map<Uint8Array, number>(SINGLE.map((set, b) => [set, b]));

/** Redis's glob matcher gives up (no match) past this many nested `*` runs. */
const MAX_STAR_RUNS = 1000;
/** Product states explored before refusing. */
const MAX_PAIRS = 20_000;
/** Subset-construction work (allowed-side states touched) before refusing. */
const MAX_WORK = 2_000_000;
/** Work one authorization check (all of a request's channels or patterns) may take; see ScopeBudget. */
export const MAX_SCOPE_WORK = 4_000_000;

/**
 * The work left for one authorization check. The caller's channels and patterns are chosen
 * by the requester, and the globs they are checked against are long-lived (a token's
 * claims, a ticket's patterns): without a bound, 100 channels of 1 KiB against a few globs
 * like `*aaaa…b` take seconds of CPU in one request. Units: matcher steps, glob bytes
 * parsed, and subset-construction work. Running out is a 400, not a silent "no", so the
 * caller learns why (`scope_too_complex`).
 */
export class ScopeBudget {
  constructor(private left = MAX_SCOPE_WORK) {}

  get remaining(): number {
    return Math.max(0, this.left);
  }

  spend(units: number): void {
    this.left -= units;
    if (this.left < 0) {
      throw new FanoutError(400, "scope_too_complex", "these channels and patterns take too much work to check against the credential's globs; ask for fewer or shorter ones");
    }
  }
}

const signed = (b: number): number => (b > 127 ? b - 256 : b);

/**
 * The tokens of a Redis glob, read the way `stringmatchlen` reads it, branch for branch
 * (same order of tests inside a class, same step back at an unclosed class).
 */
export function parseGlob(p: Uint8Array): GlobToken[] {
  const out: GlobToken[] = [];
  const n = p.length;
  let i = 0;
  while (i < n) {
    const c = p[i];
    if (c === STAR) {
      while (i < n && p[i] === STAR) i++;
      out.push(STAR_TOKEN);
      continue;
    }
    if (c === QMARK) {
      out.push({ kind: "byte", set: ANY });
    } else if (c === LBRACKET) {
      const set = new Uint8Array(256);
      i++;
      const not = i < n && p[i] === CARET;
      if (not) i++;
      for (;;) {
        if (n - i >= 2 && p[i] === BACKSLASH) {
          i++;
          set[p[i]] = 1;
        } else if (i < n && p[i] === RBRACKET) {
          break;
        } else if (i >= n) {
          // Unclosed class: the matcher steps back so its shared increment lands at the end.
          i--;
          break;
        } else if (n - i >= 3 && p[i + 1] === DASH) {
          let lo = signed(p[i]);
          let hi = signed(p[i + 2]);
          if (lo > hi) [lo, hi] = [hi, lo];
          for (let b = 0; b < 256; b++) {
            const sb = signed(b);
            if (sb >= lo && sb <= hi) set[b] = 1;
          }
          i += 2;
        } else {
          set[p[i]] = 1;
        }
        i++;
      }
      if (not) for (let b = 0; b < 256; b++) set[b] ^= 1;
      out.push({ kind: "byte", set });
    } else {
      if (c === BACKSLASH && n - i >= 2) i++;
      out.push({ kind: "byte", set: SINGLE[p[i]] });
    }
    i++;
  }
  return out;
}

/** Number of `*` runs in a glob (what bounds the matcher's backtracking depth). */
export function starRuns(tokens: readonly GlobToken[]): number {
  let runs = 0;
  for (const t of tokens) if (t.kind === "star") runs++;
  return runs;
}

/** True when `channel` may be subscribed to under the `allowed` globs. */
export function channelAllowed(channel: string, allowed: readonly string[], budget = new ScopeBudget()): boolean {
  const ch = toBytes(channel);
  for (const glob of allowed) {
    const g = toBytes(glob);
    const { match, steps } = globMatchBounded(g, ch, budget.remaining);
    budget.spend(steps + g.length);
    if (match === undefined) budget.spend(Infinity);
    if (match) return true;
  }
  return false;
}

/**
 * True only when every channel the Redis glob `pattern` can match is matched by at least one
 * of the `allowed` globs. Sound: `true` is never wrong. `false` means "not provably
 * contained" — a counterexample exists, or the check ran out of budget.
 */
export function patternWithin(pattern: string, allowed: readonly string[], budget = new ScopeBudget()): boolean {
  // The same bytes mean the same language, whatever the budget would say.
  if (allowed.includes(pattern)) return pattern.length > 0;
  const p = parseGlob(toBytes(pattern));
  // The empty pattern matches only the empty channel, which is not a channel.
  if (p.length === 0) return false;
  budget.spend(pattern.length + allowed.reduce((n, a) => n + a.length, 0));
  const globs = allowed.map((a) => parseGlob(toBytes(a))).filter((t) => t.length > 0 && starRuns(t) <= MAX_STAR_RUNS);
  if (globs.length === 0) return false;
  return new Inclusion(p, globs, budget).holds();
}

/**
 * The byte classes no glob tells apart: one representative byte per class. Partition
 * refinement by each distinct set; a single literal byte simply becomes a class of its own.
 */
function representatives(tokenLists: readonly GlobToken[][], budget: ScopeBudget): number[] {
  const sets = new Set<Uint8Array>();
  for (const tokens of tokenLists) for (const t of tokens) if (t.kind === "byte") sets.add(t.set);
  // Each distinct class refines the partition in one pass over the 256 bytes.
  budget.spend(sets.size * 256);
  let cls = new Int32Array(256);
  let classes = 1;
  const literals: number[] = [];
  for (const set of sets) {
    const literal = SINGLE_BYTE.get(set);
    if (literal !== undefined) {
      literals.push(literal);
      continue;
    }
    const renumber = new Int32Array(classes * 2).fill(-1);
    const next = new Int32Array(256);
    let count = 0;
    for (let b = 0; b < 256; b++) {
      const k = cls[b] * 2 + set[b];
      if (renumber[k] < 0) renumber[k] = count++;
      next[b] = renumber[k];
    }
    cls = next;
    classes = count;
  }
  for (const b of literals) cls[b] = classes++;
  const reps: number[] = [];
  const seen = new Uint8Array(classes);
  for (let b = 0; b < 256; b++) {
    if (seen[cls[b]] === 0) {
      seen[cls[b]] = 1;
      reps.push(b);
    }
  }
  return reps;
}

interface SubsetState {
  readonly states: Int32Array;
  readonly accepting: boolean;
  /** Every continuation (the empty one too) is accepted: nothing below can be a counterexample. */
  readonly universal: boolean;
  readonly next: Int32Array;
}

/**
 * Glob automaton states are token positions: state i has matched tokens [0, i); state n
 * accepts. A `*` at position i loops on every byte and also lets i+1 start (closure).
 */
class Inclusion {
  private readonly reps: number[];
  /** Allowed globs flattened into one state space; each glob's start state. */
  private readonly starts: number[] = [];
  /** Per flattened state: the token it reads next (undefined at a glob's accepting end). */
  private readonly token: (GlobToken | undefined)[] = [];
  private readonly universalState: boolean[] = [];
  private readonly acceptState: boolean[] = [];
  private readonly subsets: SubsetState[] = [];
  private readonly subsetIds = new Map<string, number>();
  private readonly mark: Int32Array;
  private stamp = 0;
  private work = 0;

  constructor(
    private readonly pattern: GlobToken[],
    allowed: GlobToken[][],
    private readonly budget: ScopeBudget,
  ) {
    this.reps = representatives([pattern, ...allowed], budget);
    for (const tokens of allowed) {
      this.starts.push(this.token.length);
      tokens.forEach((t, i) => {
        this.token.push(t);
        this.acceptState.push(false);
        this.universalState.push(t.kind === "star" && i === tokens.length - 1);
      });
      this.token.push(undefined);
      this.acceptState.push(true);
      this.universalState.push(false);
    }
    this.mark = new Int32Array(this.token.length);
  }

  holds(): boolean {
    const nP = this.pattern.length;
    const initial = this.intern(this.closeAll(this.starts));
    if (initial < 0) return false;
    if (this.subsets[initial].universal) return true;

    const visited = new Set<number>();
    const queue: number[] = [];
    const stride = nP + 1;
    const push = (p: number, d: number): boolean => {
      const key = d * stride + p;
      if (visited.has(key)) return true;
      visited.add(key);
      if (visited.size > MAX_PAIRS) return false;
      queue.push(p, d);
      return true;
    };
    // Depth 0 is expanded but never checked: the empty channel does not exist.
    const expand = (p: number, d: number): boolean => {
      const tok = this.pattern[p];
      if (tok === undefined) return true;
      this.budget.spend(this.reps.length);
      for (let c = 0; c < this.reps.length; c++) {
        let q: number;
        if (tok.kind === "star") q = p;
        else if (tok.set[this.reps[c]] === 1) q = p + 1;
        else continue;
        const d2 = this.step(d, c);
        if (d2 < 0) return false;
        if (this.subsets[d2].universal) continue;
        if (!push(q, d2)) return false;
        if (this.pattern[q]?.kind === "star" && !push(q + 1, d2)) return false;
      }
      return true;
    };
    for (const p of this.closeP(0)) if (!expand(p, initial)) return false;
    for (let k = 0; k < queue.length; k += 2) {
      const p = queue[k], d = queue[k + 1];
      if (p === nP && !this.subsets[d].accepting) return false;
      if (!expand(p, d)) return false;
    }
    return true;
  }

  private closeP(p: number): number[] {
    return this.pattern[p]?.kind === "star" ? [p, p + 1] : [p];
  }

  /** Closure of a set of allowed-side states, deduplicated and sorted. */
  private closeAll(states: Iterable<number>): number[] {
    const stamp = ++this.stamp;
    const out: number[] = [];
    const add = (s: number): void => {
      if (this.mark[s] === stamp) return;
      this.mark[s] = stamp;
      out.push(s);
      if (this.token[s]?.kind === "star") add(s + 1);
    };
    for (const s of states) add(s);
    return out.sort((a, b) => a - b);
  }

  private intern(states: number[]): number {
    const key = states.join(",");
    const known = this.subsetIds.get(key);
    if (known !== undefined) return known;
    this.work += states.length;
    this.budget.spend(states.length);
    if (this.work > MAX_WORK) return -1;
    const id = this.subsets.length;
    this.subsets.push({
      states: Int32Array.from(states),
      accepting: states.some((s) => this.acceptState[s]),
      universal: states.some((s) => this.universalState[s]),
      next: new Int32Array(this.reps.length).fill(-1),
    });
    this.subsetIds.set(key, id);
    return id;
  }

  /** The subset reached from subset `d` on byte class `c` (memoized); -1 past the budget. */
  private step(d: number, c: number): number {
    const cur = this.subsets[d];
    const cached = cur.next[c];
    if (cached >= 0) return cached;
    this.work += cur.states.length;
    this.budget.spend(cur.states.length);
    if (this.work > MAX_WORK) return -1;
    const b = this.reps[c];
    const moved: number[] = [];
    for (const s of cur.states) {
      const t = this.token[s];
      if (t === undefined) continue;
      if (t.kind === "star") moved.push(s);
      else if (t.set[b] === 1) moved.push(s + 1);
    }
    const id = this.intern(this.closeAll(moved));
    if (id >= 0) cur.next[c] = id;
    return id;
  }
}
