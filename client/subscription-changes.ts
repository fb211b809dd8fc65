import { FanoutClientError, errorFromResponse } from "./errors.js";
import type { ReadyInfo } from "./envelope.js";

export interface Names {
  channels?: string[];
  /** Redis PSUBSCRIBE globs. */
  patterns?: string[];
}

export interface SubscribeOptions {
  /**
   * Also deliver the added names' history after this event id (e.g. `client.lastEventId`
   * when the app last had them). Without it they start from the moment they are added.
   */
  since?: string;
  /** A subscribe ticket covering the added names (sent as `?ticket=`); default: `getTicket()` when configured. */
  ticket?: string;
}

/** `event: subscribed`, or what the client reports when a reconnection carried the change instead. */
export interface SubscribedInfo {
  /** The request id of the ack; "" when the stream already had the change (a reconnection asked for it). */
  request: string;
  channels: string[];
  patterns: string[];
  added: { channels: string[]; patterns: string[] };
  removed: { channels: string[]; patterns: string[] };
  /** With `since`: history entries sent, and `reset` when not all of it could be. */
  history?: { sent: number; reset?: string };
}

/** What the client gives the change logic: its wanted names, its live stream, its credentials. */
export interface ChangeHost {
  names(): { channels: string[]; patterns: string[] };
  setNames(channels: string[], patterns: string[]): void;
  authHeaders(): Promise<Record<string, string>>;
  ticket(): Promise<string | undefined>;
  fetch: typeof fetch;
  credentials?: RequestCredentials;
}

interface Stream {
  id: string;
  secret: string;
  url: URL;
  channels: string[];
  patterns: string[];
}

interface Waiter {
  resolve(info: SubscribedInfo | typeof AGAIN): void;
  reject(err: unknown): void;
}

/** A new stream replaced the one a change was sent to: check it against the new one. */
const AGAIN = Symbol("again");

/**
 * `subscribe`/`unsubscribe` on a live client. The wanted set changes at once (so any
 * reconnection asks for it), then `POST /v1/connections/<id>/subscriptions` changes the open
 * stream, and the call resolves when the stream's `event: subscribed` for it arrives: from
 * then on the added names are delivered. If the stream drops meanwhile, the reconnection's
 * `ready` (which carries the whole wanted set) resolves it instead. A refusal (403, 400…)
 * restores the wanted set and rejects.
 */
export class SubscriptionChanges {
  private stream?: Stream;
  private readonly acks = new Map<string, Waiter>();
  private readyWaiters: Waiter[] = [];
  private closed = false;

  constructor(private readonly host: ChangeHost) {}

  /** A connection's `ready`: changes made since are carried by it. */
  ready(info: ReadyInfo & { secret?: string }, url: URL): void {
    this.stream = info.secret ? { id: info.connection, secret: info.secret, url, channels: info.channels, patterns: info.patterns } : undefined;
    // Changes waiting for an ack from the old stream, or for a stream at all, look at this one.
    const waiting = [...this.acks.values(), ...this.readyWaiters];
    this.acks.clear();
    this.readyWaiters = [];
    for (const w of waiting) w.resolve(AGAIN);
  }

  subscribed(ack: SubscribedInfo): void {
    if (this.stream) {
      this.stream.channels = ack.channels;
      this.stream.patterns = ack.patterns;
    }
    const w = this.acks.get(ack.request);
    this.acks.delete(ack.request);
    w?.resolve(ack);
  }

  /** The stream ended: changes wait for the next `ready`. */
  dropped(): void {
    this.stream = undefined;
  }

  close(): void {
    this.closed = true;
    const err = new FanoutClientError("closed", "the client was closed");
    for (const w of [...this.acks.values(), ...this.readyWaiters]) w.reject(err);
    this.acks.clear();
    this.readyWaiters = [];
  }

  async change(add: Names, remove: Names, opts: SubscribeOptions = {}): Promise<SubscribedInfo> {
    if (this.closed) throw new FanoutClientError("closed", "the client was closed");
    const before = this.host.names();
    const addC = unique(add.channels);
    const addP = unique(add.patterns);
    const rmC = unique(remove.channels);
    const rmP = unique(remove.patterns);
    const channels = changedNames(before.channels, addC, rmC);
    const patterns = changedNames(before.patterns, addP, rmP);
    // A reconnection with nothing to ask for would be refused (400 no_subscriptions).
    if (channels.length + patterns.length === 0) throw noSubscriptionsLeft();
    this.host.setNames(channels, patterns);
    for (;;) {
      if (!this.stream) await this.nextReady();
      const s = this.stream;
      if (!s) continue;
      if (covers(s, addC, addP, rmC, rmP)) {
        return { request: "", channels: s.channels, patterns: s.patterns, added: { channels: [], patterns: [] }, removed: { channels: [], patterns: [] } };
      }
      const request = `c${Math.random().toString(36).slice(2, 12)}`;
      const acked = new Promise<SubscribedInfo | typeof AGAIN>((resolve, reject) => this.acks.set(request, { resolve, reject }));
      acked.catch(() => undefined);
      try {
        await this.post(s, { request, add: { channels: addC, patterns: addP }, remove: { channels: rmC, patterns: rmP }, ...(opts.since ? { since: opts.since } : {}) }, opts);
      } catch (err) {
        this.acks.delete(request);
        const e = err as FanoutClientError;
        // The stream is gone: the reconnection carries the wanted set (its `ready` settles this).
        if (e.code === "unknown_connection") {
          if (this.stream === s) this.stream = undefined;
          continue;
        }
        this.undo(before, addC, addP, rmC, rmP);
        throw err;
      }
      const ack = await acked;
      if (ack !== AGAIN) return ack;
    }
  }

  private nextReady(): Promise<SubscribedInfo | typeof AGAIN> {
    if (this.closed) return Promise.reject(new FanoutClientError("closed", "the client was closed"));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Restores the names this call changed (not the ones other calls changed meanwhile). */
  private undo(before: { channels: string[]; patterns: string[] }, addC: string[], addP: string[], rmC: string[], rmP: string[]): void {
    const now = this.host.names();
    this.host.setNames(undoneNames(now.channels, before.channels, addC, rmC), undoneNames(now.patterns, before.patterns, addP, rmP));
  }

  private async post(s: Stream, body: Record<string, unknown>, opts: SubscribeOptions): Promise<void> {
    const url = new URL(s.url);
    url.pathname = url.pathname.replace(/v1\/events$/, `v1/connections/${encodeURIComponent(s.id)}/subscriptions`);
    url.search = "";
    const adding = ((body.add as Names).channels?.length ?? 0) + ((body.add as Names).patterns?.length ?? 0) > 0;
    const ticket = adding ? (opts.ticket ?? (await this.host.ticket())) : undefined;
    if (ticket) url.searchParams.set("ticket", ticket);
    const headers = { ...(await this.host.authHeaders()), "Content-Type": "application/json" };
    let res: Response;
    try {
      res = await this.host.fetch(url, { method: "POST", headers, body: JSON.stringify({ secret: s.secret, ...body }), credentials: this.host.credentials });
    } catch (err) {
      throw new FanoutClientError("network_error", `POST ${url.pathname} failed: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok) throw await errorFromResponse(res);
    await res.body?.cancel().catch(() => undefined);
  }
}

export function unique(xs: string[] | undefined): string[] {
  return [...new Set(xs ?? [])];
}

/** A name list after adding `a` and removing `r` (a name in both stays), in order, each once. */
export function changedNames(cur: string[], a: string[], r: string[]): string[] {
  return [...cur.filter((n) => !r.includes(n) || a.includes(n)), ...a.filter((n) => !cur.includes(n))];
}

/** `cur` with one change (from `was`, adding `a`, removing `r`) undone, and any made since kept. */
export function undoneNames(cur: string[], was: string[], a: string[], r: string[]): string[] {
  return [...cur.filter((n) => !(a.includes(n) && !was.includes(n))), ...r.filter((n) => was.includes(n) && !cur.includes(n))];
}

export function noSubscriptionsLeft(): FanoutClientError {
  return new FanoutClientError("no_subscriptions", "this would leave the client with no channel and no pattern; close() it instead");
}

/** The stream already has the added names and none of the removed ones. */
function covers(s: { channels: string[]; patterns: string[] }, addC: string[], addP: string[], rmC: string[], rmP: string[]): boolean {
  return addC.every((n) => s.channels.includes(n)) && addP.every((n) => s.patterns.includes(n)) && !rmC.some((n) => s.channels.includes(n)) && !rmP.some((n) => s.patterns.includes(n));
}
