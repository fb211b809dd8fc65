import { globMatchBytes, toBytes } from "../../protocol/glob.js";

const STAR = 0x2a, LBRACKET = 0x5b, RBRACKET = 0x5d, BACKSLASH = 0x5c, CARET = 0x5e, DASH = 0x2d;

/**
 * The pattern the relay subscribes to in Redis for a client's glob: the glob cut after its
 * first `*` run (or the glob itself when it has none). Redis matches that in one pass, since a
 * trailing `*` ends the match at once, so its cost per PUBLISH is linear in the pattern's
 * length whatever the client sent; the rest of the glob is matched here, in the relay.
 *
 * Read over bytes the way `stringmatchlen` reads them (see protocol/glob.ts), so the cut
 * falls between two tokens: a `*` inside a class (`[*]`, `[a-*]`) or escaped (`\*`) is not
 * a star.
 */
export function redisRoute(pattern: string): string {
  const p = toBytes(pattern);
  const n = p.length;
  let i = 0;
  while (i < n) {
    const c = p[i];
    if (c === STAR) return `${Buffer.from(p.subarray(0, i)).toString("utf8")}*`;
    if (c === BACKSLASH && n - i >= 2) {
      i += 2;
    } else if (c === LBRACKET) {
      i++;
      if (i < n && p[i] === CARET) i++;
      for (;;) {
        if (i >= n) return pattern; // unclosed: the class runs to the end
        if (p[i] === BACKSLASH && n - i >= 2) i += 2;
        else if (p[i] === RBRACKET) break;
        else if (n - i >= 3 && p[i + 1] === DASH) i += 3;
        else i++;
      }
      i++;
    } else {
      i++;
    }
  }
  return pattern;
}

interface Route {
  /** The clients' globs routed through this Redis pattern, compiled to bytes. */
  readonly globs: Map<string, Uint8Array>;
  readonly ready: Promise<void>;
}

/**
 * Clients' globs grouped under the Redis patterns that carry them (`redisRoute`), one Redis
 * subscription per group. A `pmessage` for a group is matched against the group's globs
 * here, byte for byte as Redis would (protocol/glob.ts).
 */
export class PatternRoutes {
  private readonly routes = new Map<string, Route>();

  /** Adds a glob; resolves once its Redis pattern is subscribed. */
  async add(glob: string, psubscribe: (route: string) => Promise<unknown>): Promise<void> {
    const key = redisRoute(glob);
    let route = this.routes.get(key);
    if (!route) {
      const created: Route = { globs: new Map(), ready: psubscribe(key).then(() => undefined) };
      created.ready.catch(() => {
        // Forget a failed subscription so the next glob retries it.
        if (this.routes.get(key) === created) this.routes.delete(key);
      });
      this.routes.set(key, created);
      route = created;
    }
    route.globs.set(glob, toBytes(glob));
    try {
      await route.ready;
    } catch (err) {
      route.globs.delete(glob);
      throw err;
    }
  }

  /** Removes a glob; the last one of a group releases its Redis pattern. */
  async remove(glob: string, punsubscribe: (route: string) => Promise<unknown>): Promise<void> {
    const key = redisRoute(glob);
    const route = this.routes.get(key);
    if (!route || !route.globs.delete(glob) || route.globs.size > 0) return;
    this.routes.delete(key);
    await punsubscribe(key);
  }

  /** Calls `hit` for each glob of the group `route` that matches the channel's bytes. */
  forEachMatch(route: string, channel: Uint8Array, hit: (glob: string) => void): void {
    const r = this.routes.get(route);
    if (!r) return;
    for (const [glob, bytes] of r.globs) if (globMatchBytes(bytes, channel)) hit(glob);
  }
}
