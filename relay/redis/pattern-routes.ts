import { globMatchBytes, toBytes } from "../../protocol/glob.js";
import { literalPrefix } from "../broker/pattern-index.js";

/** The most Redis patterns one relay holds for its clients' globs (one more for the round trip of a merge). */
export const MAX_ROUTES = 64;

/** What pattern routes need of the subscriber connection. */
export interface PatternSubscriber {
  psubscribe(pattern: string): Promise<unknown>;
  punsubscribe(pattern: string): Promise<unknown>;
}

/** The literal text every channel a glob matches starts with (the hub's pattern index cuts globs the same way). */
export { literalPrefix };

/**
 * The prefix a glob's route starts out with: its literal prefix cut after the first `:`
 * (`user:42:*` → `user:`), or the whole literal prefix when it has no `:` (`e17_*` → `e17_`).
 * The relay subscribes Redis to `<prefix>*`.
 */
export function routePrefix(glob: string): string {
  const lp = literalPrefix(glob);
  const colon = lp.indexOf(":");
  return colon < 0 ? lp : lp.slice(0, colon + 1);
}

/** The Redis pattern for a route prefix: the prefix has no metacharacter, so `*` after it is the only one. */
export function redisPattern(prefix: string): string {
  return `${prefix}*`;
}

/** The longest common prefix of two strings, never ending inside a surrogate pair (it becomes UTF-8 for Redis). */
function commonPrefix(a: string, b: string): string {
  let i = 0;
  const n = Math.min(a.length, b.length);
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i > 0 && (a.charCodeAt(i - 1) & 0xfc00) === 0xd800) i--;
  return a.slice(0, i);
}

interface Route {
  readonly prefix: string;
  /** The clients' globs this route carries. */
  readonly globs: Set<string>;
  readonly ready: Promise<void>;
}

/**
 * Clients' globs, carried into the relay by a few broad Redis patterns (`<prefix>*`, at most
 * `MAX_ROUTES` of them whatever the clients ask for) and matched here, byte for byte as Redis
 * would (protocol/glob.ts), through a prefix index: Redis matches each PUBLISH against a
 * bounded set of patterns that end at their first `*`, and the relay spends time only on the
 * globs whose literal prefix the channel starts with.
 *
 * The rule: a glob goes to the longest route whose prefix its literal prefix starts with
 * (`*` only for globs starting with a metacharacter, or at the cap); failing that to a new
 * route for its `routePrefix`; when the relay already holds
 * `MAX_ROUTES`, the two route prefixes (the new one included) with the longest common prefix
 * are merged into one route for that common prefix (possibly `*`), which takes over every
 * route under it, and the glob is placed again. Routes only get broader while they carry globs;
 * one is released when its last glob goes.
 *
 * A move never loses a message: the broader route is subscribed (Redis has confirmed it) before
 * the narrower one is released, so every PUBLISH reaches the relay by at least one of them; one
 * that arrives by both is one publish to the live classifier (same Delivery object), and each
 * publish is delivered to its matching globs once, on its first pattern copy.
 */
export class PatternRoutes {
  /** Routes by prefix. */
  private readonly routes = new Map<string, Route>();
  private readonly owner = new Map<string, Route>();
  private readonly index = new ByteGlobIndex();
  /** Merges run one at a time, so the route count overshoots the cap by at most one. */
  private merging: Promise<void> = Promise.resolve();
  /** The route a merge is subscribing: kept even if its globs leave meanwhile (the merge fills or releases it). */
  private mergeTarget?: Route;
  /** The publish last matched against the globs: its other pattern copies are skipped. */
  private matched?: object;

  constructor(
    private readonly redis: PatternSubscriber,
    private readonly max = MAX_ROUTES,
  ) {}

  /** The Redis patterns held now (pending ones included). */
  get redisPatterns(): string[] {
    return [...this.routes.keys()].map(redisPattern);
  }

  /** Adds a glob; resolves once Redis carries its channels to the relay. */
  async add(glob: string): Promise<void> {
    for (;;) {
      const current = this.owner.get(glob);
      if (current) return current.ready;
      const route = this.place(glob);
      if (route) {
        this.attach(glob, route);
        try {
          await route.ready;
          return;
        } catch (err) {
          const now = this.owner.get(glob);
          // Moved meanwhile to a broader route (a merge): that one carries it.
          if (now && now !== route) return now.ready;
          if (now === route) this.detach(glob);
          throw err;
        }
      }
      const merge = this.merging.then(() => this.mergeFor(glob));
      this.merging = merge.catch(() => undefined);
      await merge;
    }
  }

  /** Removes a glob; the last one of a route releases its Redis pattern. */
  async remove(glob: string): Promise<void> {
    const route = this.owner.get(glob);
    if (!route) return;
    this.detach(glob);
    if (route.globs.size > 0 || route === this.mergeTarget || this.routes.get(route.prefix) !== route) return;
    this.routes.delete(route.prefix);
    await this.redis.punsubscribe(redisPattern(route.prefix));
  }

  /** The globs matching the channel (bytes as Redis sent them); none: the copy is not for this relay's clients. */
  matching(channel: Buffer): string[] {
    const out: string[] = [];
    this.index.forEachMatch(channel, (glob) => out.push(glob));
    return out;
  }

  /**
   * Whether a pattern copy is the first of its PUBLISH (`publish`: the live classifier's
   * Delivery): only that one is delivered to its matching globs; later copies, by other routes, are not.
   */
  firstCopy(publish: object): boolean {
    if (this.matched === publish) return false;
    this.matched = publish;
    return true;
  }

  /** The route to put a glob in without a merge, creating it when there is room; undefined when a merge must come first. */
  private place(glob: string): Route | undefined {
    const lp = literalPrefix(glob);
    let best: Route | undefined;
    let all: Route | undefined;
    for (const r of this.routes.values()) {
      if (r.prefix === "") all = r;
      else if (lp.startsWith(r.prefix) && (!best || r.prefix.length > best.prefix.length)) best = r;
    }
    if (best) return best;
    // `*` carries other globs only at the cap: one glob like `*:alerts` must not leave the relay
    // taking all Pub/Sub traffic for as long as the globs that arrived meanwhile stay.
    if (all && lp === "") return all;
    if (this.routes.size < this.max) return this.create(routePrefix(glob));
    return all;
  }

  private create(prefix: string): Route {
    const route: Route = { prefix, globs: new Set(), ready: this.redis.psubscribe(redisPattern(prefix)).then(() => undefined) };
    route.ready.catch(() => {
      // Forget a failed subscription so the next glob retries it.
      if (this.routes.get(prefix) === route) this.routes.delete(prefix);
    });
    this.routes.set(prefix, route);
    return route;
  }

  private attach(glob: string, route: Route): void {
    route.globs.add(glob);
    this.owner.set(glob, route);
    this.index.add(glob);
  }

  private detach(glob: string): void {
    const route = this.owner.get(glob);
    if (!route) return;
    route.globs.delete(glob);
    this.owner.delete(glob);
    this.index.delete(glob);
  }

  /**
   * Frees a route slot for `glob`: subscribes the common prefix of the two closest prefixes
   * (the glob's own among them), then moves every route under it there and releases them.
   */
  private async mergeFor(glob: string): Promise<void> {
    if (this.owner.has(glob) || this.routes.size < this.max) return;
    const lp = literalPrefix(glob);
    for (const r of this.routes.values()) if (lp.startsWith(r.prefix)) return;
    // In sorted order the longest common prefix of any two is that of two neighbours.
    const prefixes = [...this.routes.keys(), routePrefix(glob)].sort();
    let merged: string | undefined;
    for (let i = 1; i < prefixes.length; i++) {
      const c = commonPrefix(prefixes[i - 1], prefixes[i]);
      if (merged === undefined || c.length > merged.length) merged = c;
    }
    const q = merged ?? "";
    const broad = this.routes.get(q) ?? this.create(q);
    this.mergeTarget = broad;
    try {
      await broad.ready;
    } finally {
      this.mergeTarget = undefined;
    }
    // Redis now sends the broad route's copy of every PUBLISH the narrower ones carry.
    const released: Route[] = [];
    for (const r of [...this.routes.values()]) {
      if (r === broad || !r.prefix.startsWith(q)) continue;
      for (const g of r.globs) {
        r.globs.delete(g);
        broad.globs.add(g);
        this.owner.set(g, broad);
      }
      this.routes.delete(r.prefix);
      released.push(r);
    }
    if (broad.globs.size === 0 && this.routes.get(q) === broad) {
      // Its globs all left meanwhile.
      this.routes.delete(q);
      released.push(broad);
    }
    await Promise.all(
      released.map((r) =>
        // A route still subscribing is released once its PSUBSCRIBE is through (commands keep their order anyway).
        this.redis.punsubscribe(redisPattern(r.prefix)).catch(() => undefined),
      ),
    );
  }
}

/**
 * Globs indexed by the bytes of their literal prefix, so a channel is matched only against
 * the globs it can match: a few map lookups and the matching globs, not every glob. Keys are
 * the bytes as latin1 strings (one char per byte): channels from other programs need not be
 * UTF-8, and Redis matches bytes.
 */
class ByteGlobIndex {
  private readonly byPrefix = new Map<string, Map<string, Uint8Array>>();
  /** Prefix lengths in use (bytes), with how many prefixes have each. */
  private readonly lengths = new Map<number, number>();

  add(glob: string): void {
    const key = Buffer.from(toBytes(literalPrefix(glob))).toString("latin1");
    let group = this.byPrefix.get(key);
    if (!group) {
      group = new Map();
      this.byPrefix.set(key, group);
      this.lengths.set(key.length, (this.lengths.get(key.length) ?? 0) + 1);
    }
    group.set(glob, toBytes(glob));
  }

  delete(glob: string): void {
    const key = Buffer.from(toBytes(literalPrefix(glob))).toString("latin1");
    const group = this.byPrefix.get(key);
    if (!group?.delete(glob) || group.size > 0) return;
    this.byPrefix.delete(key);
    const n = (this.lengths.get(key.length) ?? 1) - 1;
    if (n > 0) this.lengths.set(key.length, n);
    else this.lengths.delete(key.length);
  }

  forEachMatch(channel: Buffer, hit: (glob: string) => void): void {
    if (this.byPrefix.size === 0) return;
    for (const len of this.lengths.keys()) {
      if (len > channel.length) continue;
      const group = this.byPrefix.get(channel.toString("latin1", 0, len));
      if (group) for (const [glob, bytes] of group) if (globMatchBytes(bytes, channel)) hit(glob);
    }
  }
}
