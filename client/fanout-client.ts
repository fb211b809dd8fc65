import { DEFAULT_BACKOFF, backoffDelay, type BackoffOptions } from "./backoff.js";
import type { Envelope, EventMap, ReadyInfo, ResetInfo } from "./envelope.js";
import { FanoutClientError, errorFromResponse } from "./errors.js";
import { MessageQueue } from "./message-queue.js";
import { endpoint } from "./publish.js";
import { SseParser, type SseEvent } from "./sse-parser.js";
import { SubscriptionChanges, type Names, type SubscribeOptions, type SubscribedInfo } from "./subscription-changes.js";
import { fetchPresence, type PresenceList, type PresenceOptions, type PresenceStats } from "./presence.js";
import { TabMember, tabSharingGroup, type MemberHost, type ShareTabsOptions } from "./tab-sharing.js";

type Awaitable<T> = T | Promise<T>;

export type ConnectionStatus = "connecting" | "live" | "reconnecting" | "closed";

export interface FanoutClientOptions {
  /**
   * The relay's base URL (`https://relay.example.com`, or with a path prefix); `/v1/events`
   * is appended unless the URL already ends with it. A function is called before every
   * connection attempt, so a client can move to another relay (they share one log: the
   * last id is valid on every relay of one Redis).
   */
  url: string | URL | (() => Awaitable<string | URL>);
  channels?: string[];
  /** Redis PSUBSCRIBE globs. */
  patterns?: string[];
  /** Sent as `Authorization: Bearer …`, never in the URL. A function is called per attempt, so an expiring JWT can be refreshed. */
  token?: string | (() => Awaitable<string>);
  /**
   * A fresh token, called when the relay ends the stream because its token expired (`event:
   * expired`) or refuses a reconnection with 401 `token_expired`; the client then reconnects
   * with it and its last id, losing nothing, and uses it from then on. Without `getToken`
   * (or a `token` function, or `getTicket`), an expired token stops the client with a
   * `token_expired` error.
   */
  getToken?: () => Awaitable<string>;
  /**
   * A fresh subscribe ticket (from your backend's `POST /v1/tickets`) for every connection
   * attempt, sent as `?ticket=`: a ticket is single-use, so reconnections (after a drop, or
   * after `event: expired`) each need a new one.
   */
  getTicket?: () => Awaitable<string>;
  /** Extra request headers (or a function returning them, per attempt). */
  headers?: Record<string, string> | (() => Awaitable<Record<string, string>>);
  /** Resume from here: the client receives every message after it, then live ones. */
  lastEventId?: string;
  fetch?: typeof fetch;
  /** Browsers: `include` to send cookies to a relay on another origin (it must list that origin in FANOUT_CORS_ORIGINS). */
  credentials?: RequestCredentials;
  backoff?: BackoffOptions;
  /**
   * Reconnect when nothing at all (not even a heartbeat comment) arrives for this long:
   * a silently dead TCP connection otherwise looks open forever. Default 45000 (three
   * default relay heartbeats); 0 turns it off.
   */
  idleTimeoutMs?: number;
  /**
   * Browsers: share one stream among every tab (and every client) of this origin that uses
   * the same relay and credential, instead of one stream per tab (HTTP/1.1 allows six
   * connections per origin: a seventh tab would hang). One tab, elected with a Web Lock,
   * holds the stream on the union of the tabs' channels and patterns; the others receive its
   * messages over a BroadcastChannel, each only those of its own channels and patterns. When
   * that tab closes, another takes over and resumes from the last id any of them saw,
   * delivering nothing twice. Default: on in a page where Web Locks and BroadcastChannel
   * exist (else a stream per client), grouping clients by URL, string `token` and object
   * `headers`; a client with a `token`/`headers` function or `getTicket` shares only when
   * told (`true`, or `{ group }` naming the user); `false` opts out.
   */
  shareTabs?: boolean | ShareTabsOptions;
}

export type MessageHandler<T = unknown> = (envelope: Envelope<T>, raw: SseEvent) => void;

export interface MessagesOptions {
  /**
   * Messages held for the loop. When this many wait, the client stops reading the network
   * until the loop takes one (plus the messages of the network read in progress). Default 1000.
   */
  bufferSize?: number;
}

const DEFAULT_BUFFER_SIZE = 1000;

const CONTROL_EVENTS = new Set(["ready", "reset", "expired", "subscribed"]);

/** Two expiries closer than this: the fresh credential is no better, so reconnect with backoff. */
const EXPIRY_LOOP_MS = 1000;

/**
 * A subscriber for a relay's `GET /v1/events`, over `fetch` (browsers and Node 20; no
 * EventSource needed). Unlike EventSource it sends `Last-Event-ID` and `Authorization` as
 * headers, reconnects with jittered exponential backoff (honouring `retry:` and
 * `Retry-After`), and stops for good on a refusal that retrying cannot fix (400, 401, 403).
 *
 * A stream never ends on purpose: it has no end marker, so a relay that crashes, drains or is
 * cut off by a proxy all look alike (a clean close, or a frame cut short). Every close is a
 * drop: the client reconnects with backoff and resumes; only `close()` and refusals stop it.
 * The one exception, `event: expired` (the credential ran out), reconnects at once with a
 * fresh one from `getToken`/`getTicket`, or stops with `token_expired` when there is none.
 * Delivery is exactly once across reconnects: the client remembers the id of the last event
 * it handed to its handlers and resumes from it (an event cut short is discarded, never
 * handed over); the relay replays precisely what follows.
 * Handlers run synchronously in stream order; an id counts as handled once they return.
 *
 * Connecting starts on the next microtask, so handlers registered right after `new` see
 * every event and status.
 *
 * `Events` maps message types to their `data` shapes, for typed handlers
 * (`new FanoutClient<{ "order.created": Order }>(…)`); it is a compile-time promise only,
 * nothing checks the data at run time.
 */
export class FanoutClient<Events extends object = EventMap> {
  private readonly opts: FanoutClientOptions;
  private readonly handlers = new Map<string, Set<MessageHandler<any>>>();
  private readonly readyHandlers = new Set<(info: ReadyInfo) => void>();
  private readonly resetHandlers = new Set<(reason: ResetInfo["reason"], info: ResetInfo) => void>();
  private readonly statusHandlers = new Set<(status: ConnectionStatus) => void>();
  private readonly errorHandlers = new Set<(err: FanoutClientError) => void>();
  /** `any`, not `Events[…]`: a client typed for some events stays assignable to a plain `FanoutClient`. */
  private readonly queues = new Set<MessageQueue<Envelope<any>>>();
  /** Why the client stopped, when a refusal stopped it (iterators throw it). */
  private fatal?: FanoutClientError;
  private readonly doFetch: typeof fetch;
  private _status: ConnectionStatus = "connecting";
  private _lastEventId: string;
  private _connectionId?: string;
  private retryMs: number;
  private attempt = 0;
  private abort?: AbortController;
  private sleepTimer?: ReturnType<typeof setTimeout>;
  private wake?: () => void;
  /** Set by `getToken`: replaces `token` for every later attempt. */
  private freshToken?: string;
  /** The next attempt calls `getToken` first. */
  private needToken = false;
  /** `getToken` was called for a refusal since the last `ready`: a second refusal stops. */
  private refreshedSinceReady = false;
  /** The stream just ended on `expired` with a way to refresh: reconnect at once. */
  private reconnectNow = false;
  private lastExpiryAt = 0;
  /** The URL the current stream was opened with (changes and presence go to the same relay base). */
  private streamUrl?: URL;
  private readonly changes: SubscriptionChanges;
  /** Set when this client shares its tab group's stream instead of opening its own. */
  private readonly member?: TabMember;

  constructor(opts: FanoutClientOptions) {
    this.opts = { channels: [], patterns: [], idleTimeoutMs: 45_000, ...opts };
    this._lastEventId = opts.lastEventId ?? "";
    this.retryMs = opts.backoff?.initialMs ?? DEFAULT_BACKOFF.initialMs;
    // Called through a closure: a browser's fetch invoked as a method of another object throws.
    const f = opts.fetch;
    this.doFetch = f ? (input, init) => f(input, init) : (input, init) => globalThis.fetch(input, init);
    this.changes = new SubscriptionChanges({
      names: () => ({ channels: this.opts.channels ?? [], patterns: this.opts.patterns ?? [] }),
      setNames: (channels, patterns) => {
        this.opts.channels = channels;
        this.opts.patterns = patterns;
      },
      authHeaders: () => this.authHeaders(),
      ticket: async () => (this.opts.getTicket ? this.refresh("ticket", this.opts.getTicket) : undefined),
      fetch: this.doFetch,
      credentials: opts.credentials,
    });
    const group = tabSharingGroup(opts);
    if (group === undefined) {
      queueMicrotask(() => void this.run());
      return;
    }
    const member = new TabMember(group, this.memberHost(), this._lastEventId);
    this.member = member;
    queueMicrotask(() => {
      if (this.isClosed()) return;
      for (const h of [...this.statusHandlers]) this.call(() => h("connecting"));
      member.start();
    });
  }

  /** With tab sharing: `leader` when this client holds its group's stream, `follower` when another does. */
  get tabRole(): "leader" | "follower" | undefined {
    return this.member ? (this.member.leading ? "leader" : "follower") : undefined;
  }

  get status(): ConnectionStatus {
    return this._status;
  }

  /** The id to resume from: the last event handed to the handlers (or given in the options). */
  get lastEventId(): string {
    return this._lastEventId;
  }

  /** The relay's id for the current connection, from its `ready` event. */
  get connectionId(): string | undefined {
    return this._connectionId;
  }

  /**
   * Messages of one type (the publish `type`, which is the SSE `event:` name); `"message"`
   * for messages published without a type (as EventSource's `onmessage`); `"*"` for every
   * message. Returns a function that removes the handler.
   */
  on<K extends keyof Events & string>(type: K, handler: MessageHandler<Events[K]>): () => void;
  on<T = unknown>(type: string, handler: MessageHandler<T>): () => void;
  on(type: string, handler: MessageHandler<any>): () => void {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(handler);
    return () => set!.delete(handler);
  }

  /** Every subscription is live (after each (re)connection): anything published from now on is delivered. */
  onReady(handler: (info: ReadyInfo) => void): () => void {
    return add(this.readyHandlers, handler);
  }

  /** The relay could not resume from the last id (`retention`, `unknown`, `malformed`, `limit`): some messages are lost; refetch state. */
  onReset(handler: (reason: ResetInfo["reason"], info: ResetInfo) => void): () => void {
    return add(this.resetHandlers, handler);
  }

  onStatus(handler: (status: ConnectionStatus) => void): () => void {
    return add(this.statusHandlers, handler);
  }

  /**
   * Errors. When `err.status` is 400/401/403 (or another refusal retrying cannot fix), the
   * client has stopped: `status` is `closed`. Others (`invalid_envelope`, `handler_error`)
   * are reports; the stream goes on.
   */
  onError(handler: (err: FanoutClientError) => void): () => void {
    return add(this.errorHandlers, handler);
  }

  /**
   * Every message (as `on("*")`), in stream order, as an async iterator:
   * `for await (const m of client.messages())`, or `for await (const m of client)`. The loop
   * ends after the messages already queued once `close()` is called, and throws the
   * FanoutClientError that stopped the client after a refusal (401, 403, …). Leaving the loop
   * (`break`) detaches it; the client goes on until `close()`. Messages are queued from
   * the moment this is called.
   */
  messages(opts: MessagesOptions = {}): AsyncIterableIterator<Envelope<Events[keyof Events]>> {
    const size = opts.bufferSize ?? DEFAULT_BUFFER_SIZE;
    if (!(Number.isInteger(size) && size > 0)) throw new RangeError("bufferSize must be a positive integer");
    const q: MessageQueue<Envelope<Events[keyof Events]>> = new MessageQueue(size, () => this.queues.delete(q));
    if (this.isClosed()) q.end(this.fatal);
    else this.queues.add(q);
    return q;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Envelope<Events[keyof Events]>> {
    return this.messages();
  }

  /**
   * Adds channels and patterns to the open stream without reconnecting. Resolves once they
   * are live (the stream's `event: subscribed` for this call, or the `ready` of a reconnection,
   * which always asks for the current set). The added names are authorized like a new
   * stream's, with this client's token (or `opts.ticket` / `getTicket()`); a refusal rejects
   * with the relay's code and leaves the set as it was.
   */
  subscribe(names: Names, opts?: SubscribeOptions): Promise<SubscribedInfo> {
    return this.member ? this.member.change(names, {}, opts) : this.changes.change(names, {}, opts);
  }

  /** Removes channels and patterns from the open stream; resolves once the stream acked it. */
  unsubscribe(names: Names): Promise<SubscribedInfo> {
    return this.member ? this.member.change({}, names) : this.changes.change({}, names);
  }

  /** The channels and patterns this client follows now (what a reconnection asks for). */
  get subscriptions(): { channels: string[]; patterns: string[] } {
    return { channels: [...(this.opts.channels ?? [])], patterns: [...(this.opts.patterns ?? [])] };
  }

  /**
   * Who is on a presence channel (`GET /v1/presence/<channel>`), or with `{ stats: true }`
   * the counts only. Authorized like subscribing to the channel, with this client's token.
   */
  presence(channel: string): Promise<PresenceList>;
  presence(channel: string, opts: PresenceOptions & { stats: true }): Promise<PresenceStats>;
  presence(channel: string, opts: PresenceOptions = {}): Promise<PresenceList | PresenceStats> {
    return (async () => fetchPresence(this.streamUrl ?? (await this.eventsUrl(false)), channel, opts, await this.authHeaders(), this.doFetch, this.opts.credentials))();
  }

  /** Ends the stream and every reconnection for good. */
  close(): void {
    if (this.isClosed()) return;
    this.changes.close();
    this.member?.close();
    this.setStatus("closed");
    this.abort?.abort();
    if (this.sleepTimer !== undefined) clearTimeout(this.sleepTimer);
    this.wake?.();
    for (const q of this.queues) q.end(this.fatal);
    this.queues.clear();
  }

  /** Stops for good because of `err` (a refusal): reported to `onError`, thrown by iterators. */
  private stop(err: FanoutClientError): void {
    this.fatal = err;
    this.emitError(err);
    this.close();
  }

  /** A method, not a comparison inline: TypeScript would keep `_status` narrowed across awaits. */
  private isClosed(): boolean {
    return this._status === "closed";
  }

  private async run(): Promise<void> {
    if (this.isClosed()) return;
    for (const h of [...this.statusHandlers]) this.call(() => h("connecting"));
    while (!this.isClosed()) {
      let retryAfterMs = 0;
      try {
        const res = await this.connect();
        if (res === "closed") return;
        retryAfterMs = res;
        if (this.reconnectNow) {
          this.reconnectNow = false;
          this.setStatus("reconnecting");
          continue;
        }
      } catch (err) {
        if (this.isClosed()) return;
        if (err instanceof FanoutClientError && err.code === "token_expired" && this.opts.getToken && !this.refreshedSinceReady) {
          this.refreshedSinceReady = true;
          this.needToken = true;
          this.setStatus("reconnecting");
          continue;
        }
        if (err instanceof FanoutClientError && err.status !== 0 && !retryable(err.status)) {
          this.stop(err);
          return;
        }
        retryAfterMs = err instanceof FanoutClientError ? (err.retryAfterMs ?? 0) : 0;
      }
      this.setStatus("reconnecting");
      const { maxMs } = { ...DEFAULT_BACKOFF, ...this.opts.backoff };
      await this.sleep(backoffDelay(this.attempt++, this.retryMs, maxMs, retryAfterMs));
    }
  }

  /**
   * One connection, from request to the end of its stream. Resolves when the stream ends,
   * however it ends (0: a drop, reconnect after the usual backoff); throws FanoutClientError
   * on an HTTP refusal or a network failure.
   */
  private async connect(): Promise<0 | "closed"> {
    const abort = new AbortController();
    this.abort = abort;
    const [url, headers] = await Promise.all([this.eventsUrl(), this.requestHeaders()]);
    if (this.isClosed()) return "closed";
    this.streamUrl = url;
    let res: Response;
    try {
      res = await this.doFetch(url, { headers, signal: abort.signal, credentials: this.opts.credentials });
    } catch (err) {
      throw new FanoutClientError("network_error", `GET ${url.pathname} failed: ${(err as Error).message}`, { cause: err });
    }
    if (res.status !== 200) throw await errorFromResponse(res);
    const contentType = res.headers.get("content-type") ?? "";
    if (!/^text\/event-stream\b/i.test(contentType) || !res.body) {
      abort.abort();
      throw new FanoutClientError("not_event_stream", `expected text/event-stream, got ${JSON.stringify(contentType)}`, { status: res.status });
    }
    await this.stream(res.body, abort);
    return this.isClosed() ? "closed" : 0;
  }

  private async stream(body: ReadableStream<Uint8Array>, abort: AbortController): Promise<void> {
    const parser = new SseParser(
      {
        onEvent: (ev) => {
          if (!abort.signal.aborted) this.dispatch(ev);
        },
        onRetry: (ms) => {
          this.retryMs = ms;
        },
      },
      this._lastEventId,
    );
    const reader = body.getReader();
    const idleMs = this.opts.idleTimeoutMs ?? 0;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      if (idleMs <= 0) return;
      if (idle !== undefined) clearTimeout(idle);
      idle = setTimeout(() => abort.abort(), idleMs);
    };
    arm();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || abort.signal.aborted) break;
        arm();
        parser.feed(value);
        if (this.iteratorFull()) {
          // Hold the stream back until the loops catch up; silence while we do is ours.
          if (idle !== undefined) clearTimeout(idle);
          await this.iteratorSpace(abort.signal);
          if (abort.signal.aborted) break;
          arm();
        }
      }
    } catch {
      // A dropped connection (or our own abort): either way, the caller reconnects or stops.
    } finally {
      if (idle !== undefined) clearTimeout(idle);
      this.changes.dropped();
      parser.end();
      abort.abort();
      reader.releaseLock();
    }
  }

  private dispatch(ev: SseEvent): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(ev.data);
    } catch {
      this.emitError(new FanoutClientError("invalid_envelope", `event ${JSON.stringify(ev.type)} carries data that is not JSON`));
      this.track(ev);
      return;
    }
    // `ready` and `reset` are the relay's own events; a message published with such a type
    // still arrives as an envelope, which always names its channel.
    const isEnvelope = typeof parsed === "object" && parsed !== null && typeof (parsed as Envelope).channel === "string";
    if (CONTROL_EVENTS.has(ev.type) && !isEnvelope) {
      this.track(ev);
      if (ev.type === "expired") {
        this.onExpired();
      } else if (ev.type === "ready") {
        const info = parsed as ReadyInfo;
        this._connectionId = info.connection;
        this.attempt = 0;
        this.refreshedSinceReady = false;
        this.setStatus("live");
        for (const h of [...this.readyHandlers]) this.call(() => h(info));
        if (this.streamUrl) this.changes.ready(info, this.streamUrl);
      } else if (ev.type === "subscribed") {
        this.changes.subscribed(parsed as SubscribedInfo);
      } else {
        const info = parsed as ResetInfo;
        for (const h of [...this.resetHandlers]) this.call(() => h(info.reason, info));
      }
      return;
    }
    if (!isEnvelope) {
      this.emitError(new FanoutClientError("invalid_envelope", `event ${JSON.stringify(ev.type)} is not a message envelope`));
      this.track(ev);
      return;
    }
    this.deliver(parsed as Envelope<Events[keyof Events]>, ev);
    this.track(ev);
  }

  /** Hands one message to the handlers and iterators, in order. */
  private deliver(envelope: Envelope<Events[keyof Events]>, ev: SseEvent): void {
    const targets = [...(ev.type === "*" ? [] : (this.handlers.get(ev.type) ?? [])), ...(this.handlers.get("*") ?? [])];
    for (const h of targets) {
      if (this.isClosed()) break;
      this.call(() => h(envelope, ev));
    }
    if (!this.isClosed()) for (const q of this.queues) q.push(envelope);
  }

  /** This client as its tab group sees it: its names, and where the shared stream's events land. */
  private memberHost(): MemberHost {
    return {
      names: () => ({ channels: [...(this.opts.channels ?? [])], patterns: [...(this.opts.patterns ?? [])] }),
      setNames: (channels, patterns) => {
        this.opts.channels = channels;
        this.opts.patterns = patterns;
      },
      // The leader's stream: a client of its own on the group's names, with this client's credentials.
      openStream: (names, lastEventId) => new FanoutClient({ ...this.opts, ...names, lastEventId, shareTabs: false }),
      deliver: (envelope, raw) => {
        if (!this.isClosed()) this.deliver(envelope as Envelope<Events[keyof Events]>, raw);
      },
      position: (id) => {
        this._lastEventId = id;
      },
      status: (s) => {
        if (!this.isClosed()) this.setStatus(s);
      },
      ready: (info) => {
        this._connectionId = info.connection;
        for (const h of [...this.readyHandlers]) this.call(() => h(info));
      },
      reset: (info) => {
        for (const h of [...this.resetHandlers]) this.call(() => h(info.reason, info));
      },
      error: (err) => this.emitError(err),
      stop: (err) => {
        if (!this.isClosed()) this.stop(err);
      },
    };
  }

  private iteratorFull(): boolean {
    for (const q of this.queues) if (q.full) return true;
    return false;
  }

  /** Resolves when every iterator has room, or when the stream is aborted (closed). */
  private async iteratorSpace(signal: AbortSignal): Promise<void> {
    let onAbort = () => {};
    const aborted = new Promise<void>((resolve) => (onAbort = resolve));
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (!signal.aborted && this.iteratorFull()) {
        await Promise.race([Promise.all([...this.queues].map((q) => q.space())), aborted]);
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** The relay is ending this stream: its credential expired. */
  private onExpired(): void {
    const { getToken, getTicket, token } = this.opts;
    if (!getToken && !getTicket && typeof token !== "function") {
      this.stop(new FanoutClientError("token_expired", "the stream's token expired; give getToken (or getTicket) to reconnect with a fresh one", { status: 401 }));
      return;
    }
    const now = Date.now();
    this.needToken = getToken !== undefined;
    this.reconnectNow = now - this.lastExpiryAt >= EXPIRY_LOOP_MS;
    this.lastExpiryAt = now;
  }

  private track(ev: SseEvent): void {
    if (ev.lastEventId !== "") this._lastEventId = ev.lastEventId;
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.emitError(new FanoutClientError("handler_error", `a handler threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
    }
  }

  private emitError(err: FanoutClientError): void {
    if (this.errorHandlers.size === 0) {
      console.error("[fanout-client]", err);
      return;
    }
    for (const h of [...this.errorHandlers]) {
      try {
        h(err);
      } catch (e) {
        console.error("[fanout-client] error handler threw:", e);
      }
    }
  }

  private setStatus(s: ConnectionStatus): void {
    if (this._status === s) return;
    this._status = s;
    for (const h of [...this.statusHandlers]) this.call(() => h(s));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.sleepTimer = setTimeout(resolve, ms);
    });
  }

  private async eventsUrl(withParams = true): Promise<URL> {
    const u = this.opts.url;
    const base = new URL(typeof u === "function" ? await u() : u);
    const url = base.pathname.endsWith("/v1/events") ? base : endpoint(base, "v1/events");
    url.search = base.search;
    if (!withParams) return url;
    for (const ch of this.opts.channels ?? []) url.searchParams.append("channel", ch);
    for (const p of this.opts.patterns ?? []) url.searchParams.append("pattern", p);
    if (this.opts.getTicket) url.searchParams.set("ticket", await this.refresh("ticket", this.opts.getTicket));
    return url;
  }

  /** A credential from a user callback; a failure is retried with backoff like a network error. */
  private async refresh(what: string, get: () => Awaitable<string>): Promise<string> {
    try {
      return await get();
    } catch (err) {
      const e = new FanoutClientError("credential_error", `get${what === "token" ? "Token" : "Ticket"}() failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      this.emitError(e);
      throw e;
    }
  }

  /** The configured headers and the current token, for calls beside the stream. */
  private async authHeaders(): Promise<Record<string, string>> {
    const h = this.opts.headers;
    const headers: Record<string, string> = { ...(typeof h === "function" ? await h() : h) };
    const t = this.opts.token;
    const token = this.freshToken ?? (typeof t === "function" ? await t() : t);
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  }

  private async requestHeaders(): Promise<Record<string, string>> {
    const h = this.opts.headers;
    const headers: Record<string, string> = { Accept: "text/event-stream", ...(typeof h === "function" ? await h() : h) };
    if (this.needToken && this.opts.getToken) {
      this.freshToken = await this.refresh("token", this.opts.getToken);
      this.needToken = false;
    }
    const t = this.opts.token;
    const token = this.freshToken ?? (typeof t === "function" ? await t() : t);
    if (token) headers.Authorization = `Bearer ${token}`;
    if (this._lastEventId !== "") headers["Last-Event-ID"] = this._lastEventId;
    return headers;
  }
}

/**
 * 429, 503 and the other 5xx (a proxy's 502 while a relay restarts) are worth retrying, and
 * 408. Any other answer (400, 401, 403, 404, a 200 that is not an event stream) will not
 * change by asking again, so the client stops, as EventSource does.
 */
function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

function add<T>(set: Set<T>, item: T): () => void {
  set.add(item);
  return () => set.delete(item);
}
