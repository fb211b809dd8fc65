import { createHash, timingSafeEqual } from "node:crypto";
import { FanoutError } from "../protocol/errors.js";
import { formatCursor, type Cursor } from "../protocol/cursor.js";
import { globMatchBytes, toBytes } from "../protocol/glob.js";
import type { Client } from "./client.js";
import type { RelayContext } from "./relay-context.js";
import type { NameSet, SubscriptionChange } from "./subscription-change.js";
import { partitionsOf, replayDropped, replayHistory, type ResetReason } from "./replay.js";
import { encodeEvent } from "./sse/frame.js";
import { randomToken } from "./random-token.js";
import type { PresenceIdentity } from "./presence/presence-store.js";

/** What `event: subscribed` carries, and the answer to the change request. */
export interface SubscribedAck {
  request: string;
  /** The stream's whole set after the change. */
  channels: string[];
  patterns: string[];
  added: NameSet;
  removed: NameSet;
  /** Only with `since`: history entries sent for the added names, and why it is incomplete if it is. */
  history?: { sent: number; reset?: ResetReason };
}

export function unknownConnection(): FanoutError {
  return new FanoutError(404, "unknown_connection", "no open stream has this connection id (it ended, or never existed)");
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/**
 * One open SSE stream as dynamic subscriptions see it: the client, the secret its `ready`
 * event handed out, its hold on the relay's pattern budget, and the changes made to it, one
 * at a time and only once the stream's own setup (replay) is over — an ack in the middle of a
 * replay would carry an id past entries not yet sent.
 */
export class OpenStream {
  readonly secret = randomToken(24);
  /** Made on the first change request: most streams never get one. */
  private secretDigest?: Buffer;
  private queue: Promise<unknown>;
  private setupDone!: () => void;
  /** Set once the stream is live: it is then a presence member of its presence channels. */
  live = false;

  constructor(
    readonly id: string,
    readonly client: Client,
    /** Who opened the stream (presence); names added later keep it, whatever credential authorized them. */
    readonly identity: PresenceIdentity,
    /** The lease on the relay-wide pattern budget for the current patterns; replaced on change. */
    private readonly lease: { release: () => void },
    /** Ends the stream no later than this (ms since the epoch): an added name's credential may be shorter-lived. */
    private readonly limitExpiry: (endsAt: number) => void,
  ) {
    this.queue = new Promise<void>((resolve) => (this.setupDone = resolve));
  }

  /** The stream's setup is over (live, or failed): changes may run. */
  setupEnded(): void {
    this.setupDone();
  }

  /** Constant time: digests of equal length are compared whatever the given secret's length. */
  secretMatches(given: string): boolean {
    this.secretDigest ??= digest(this.secret);
    return timingSafeEqual(digest(given), this.secretDigest);
  }

  change(rc: RelayContext, ch: SubscriptionChange & { sinceCursor?: Cursor }, grantEndsAt: number | undefined): Promise<SubscribedAck> {
    const run = this.queue.then(() => this.apply(rc, ch, grantEndsAt));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async apply(rc: RelayContext, ch: SubscriptionChange & { sinceCursor?: Cursor }, grantEndsAt: number | undefined): Promise<SubscribedAck> {
    const c = this.client;
    if (c.conn.closed) throw unknownConnection();
    const { config, hub, limits } = rc;
    const before = { channels: c.channels, patterns: c.patterns };
    const plan = (cur: string[], add: string[], remove: string[]) => {
      const has = new Set(cur);
      const keep = new Set(add);
      const added = add.filter((n) => !has.has(n));
      const gone = new Set(remove.filter((n) => has.has(n) && !keep.has(n)));
      return { added, removed: [...gone], next: [...cur.filter((n) => !gone.has(n)), ...added] };
    };
    const chans = plan(before.channels, ch.add.channels, ch.remove.channels);
    const pats = plan(before.patterns, ch.add.patterns, ch.remove.patterns);
    if (chans.next.length + pats.next.length > config.maxSubscriptionsPerConnection) {
      throw new FanoutError(400, "too_many_subscriptions", `at most ${config.maxSubscriptionsPerConnection} channels and patterns per connection`);
    }
    limits.checkPatterns(pats.next);
    const lease = limits.leasePatterns(pats.next);
    const adding = chans.added.length + pats.added.length > 0;
    const withHistory = adding && ch.sinceCursor !== undefined;
    if (withHistory) c.pause();
    // In the lists before the wait, so a stream closing meanwhile releases them too.
    c.channels = [...before.channels, ...chans.added];
    c.patterns = [...before.patterns, ...pats.added];
    try {
      if (adding) await hub.attachMore(c, chans.added, pats.added);
    } catch (err) {
      c.channels = before.channels;
      c.patterns = before.patterns;
      lease();
      if (withHistory) await this.goLive(rc);
      throw err;
    }
    // Closed while waiting: its close handler has released what it held then; this lease too.
    if (c.conn.closed) {
      lease();
      throw unknownConnection();
    }
    c.channels = chans.next;
    c.patterns = pats.next;
    hub.detachSome(c, chans.removed, pats.removed);
    if (this.live) {
      void rc.presence.exit(this.id, chans.removed);
      void rc.presence.enter(this.id, this.identity, chans.added);
    }
    const old = this.lease.release;
    this.lease.release = lease;
    old();
    if (grantEndsAt !== undefined && adding) this.limitExpiry(grantEndsAt);

    let history: SubscribedAck["history"];
    if (withHistory) {
      // Everything up to the settled relay cursor is either already sent (old names) or history.
      const upTo = hub.cursor.slice();
      const matches = historyMatcher(before, chans.added, pats.added);
      c.skipHistory((name) => matches(name) !== undefined, upTo);
      try {
        const parts = partitionsOf(chans.added, pats.added, rc.broker.partitions);
        history = await replayHistory(rc.log, c, parts, ch.sinceCursor!, upTo, matches, config.replayLimit);
        rc.metrics.replayed.inc(history.sent);
      } catch (err) {
        console.warn("[fanout] history of added subscriptions failed:", (err as Error).message);
        c.conn.destroy("error");
      }
      await this.goLive(rc);
    }
    if (c.conn.closed) throw unknownConnection();
    const ack: SubscribedAck = {
      request: ch.request,
      channels: c.channels,
      patterns: c.patterns,
      added: { channels: chans.added, patterns: pats.added },
      removed: { channels: chans.removed, patterns: pats.removed },
      ...(history ? { history } : {}),
    };
    // The id is the stream's position now: a resume from it includes the added names from here.
    c.conn.send(encodeEvent({ id: formatCursor(c.position(hub.cursor)), event: "subscribed", data: JSON.stringify(ack) }));
    return ack;
  }

  /** Live messages held during a history replay go out (after any dropped ones, from the log). */
  private async goLive(rc: RelayContext): Promise<void> {
    try {
      const again = await replayDropped(rc.log, this.client, rc.broker.partitions, rc.config.replayLimit, rc.hub.cursor);
      rc.metrics.replayed.inc(again.sent);
      // A reset here is the stream's: the client resumes from its last id.
      if (again.reset) this.client.conn.destroy("error");
    } catch {
      this.client.conn.destroy("error");
    }
    this.client.goLive(rc.hub.cursor);
  }
}

/**
 * Which log entries are history of the added names: those the stream's earlier names did not
 * already bring (it has them live). Returns true for an added channel, the pattern for an
 * added pattern, undefined for anything else.
 */
function historyMatcher(before: NameSet, channels: string[], patterns: string[]): (channel: string) => string | true | undefined {
  const oldChannels = new Set(before.channels);
  const oldPatterns = before.patterns.map(toBytes);
  const added = new Set(channels);
  const addedPatterns = patterns.map((p) => [p, toBytes(p)] as const);
  return (name) => {
    if (oldChannels.has(name)) return undefined;
    const bytes = toBytes(name);
    if (oldPatterns.some((p) => globMatchBytes(p, bytes))) return undefined;
    if (added.has(name)) return true;
    return addedPatterns.find(([, p]) => globMatchBytes(p, bytes))?.[0];
  };
}
