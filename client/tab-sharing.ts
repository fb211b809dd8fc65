import type { ConnectionStatus } from "./fanout-client.js";
import type { Envelope, ReadyInfo, ResetInfo } from "./envelope.js";
import { FanoutClientError } from "./errors.js";
import { globMatch } from "./glob.js";
import type { SseEvent } from "./sse-parser.js";
import { changedNames, noSubscriptionsLeft, undoneNames, unique, type Names, type SubscribeOptions, type SubscribedInfo } from "./subscription-changes.js";
import { TabLeader, type SharedStream } from "./tab-leader.js";
import { JOIN, covers, fromWire, isWire, randomId, type NameSet, type Wire } from "./tab-wire.js";

export type { SharedStream } from "./tab-leader.js";
export type { NameSet } from "./tab-wire.js";

export interface ShareTabsOptions {
  /**
   * Clients with the same group (in any tab of this origin) share one stream, opened with the
   * credentials of whichever tab leads: name it after the user (e.g. their id). Default: the
   * relay URL plus a digest of a string `token` and of object `headers`.
   */
  group?: string;
}

/** What a FanoutClient in a tab group gives its membership. */
export interface MemberHost {
  names(): NameSet;
  setNames(channels: string[], patterns: string[]): void;
  /** Opens the group's stream in this tab (it leads): `names`, resuming after `lastEventId`. */
  openStream(names: NameSet, lastEventId: string): SharedStream;
  deliver(envelope: Envelope, raw: SseEvent): void;
  /** The shared stream's position moved (what a resume would start from). */
  position(id: string): void;
  status(s: ConnectionStatus): void;
  ready(info: ReadyInfo): void;
  reset(info: ResetInfo): void;
  error(err: FanoutClientError): void;
  /** A refusal stopped this member: its names were refused, or the stream stopped for good. */
  stop(err: FanoutClientError): void;
}

/** Envelope ids remembered to drop the copies a new leader's resume replays. */
const SEEN_MAX = 10_000;

interface Pending {
  resolve(info: SubscribedInfo): void;
  reject(err: unknown): void;
  before: NameSet;
  add: NameSet;
  remove: NameSet;
}

interface Locks {
  request(name: string, opts: { signal?: AbortSignal }, cb: () => Promise<void>): Promise<void>;
  query(): Promise<{ held?: Array<{ name?: string }> }>;
}

function locks(): Locks | undefined {
  return (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks;
}

/** Web Locks and BroadcastChannel are both there (browsers since 2022; not Node 20). */
export function tabSharingAvailable(): boolean {
  return typeof BroadcastChannel === "function" && typeof locks()?.request === "function";
}

/**
 * The client's group, or undefined for a stream of its own. On by default in a page (a window
 * with a document), where tabs exist, for clients whose credential can be told apart: the
 * default group is the relay URL plus a digest of a string `token` and of object `headers`,
 * so clients of different users never share. A `url`, `token` or `headers` function, or
 * `getTicket`, could stand for anyone: such a client shares only when `shareTabs` says so
 * (`true`: by URL alone; `{ group }`).
 */
export function tabSharingGroup(opts: {
  url: unknown;
  token?: unknown;
  headers?: unknown;
  getTicket?: unknown;
  shareTabs?: boolean | ShareTabsOptions;
}): string | undefined {
  const inPage = typeof (globalThis as { document?: unknown }).document === "object";
  const share = opts.shareTabs ?? inPage;
  if (share === false || !tabSharingAvailable()) return undefined;
  const group = typeof share === "object" ? share.group : undefined;
  if (group !== undefined) return `fanout:${group}`;
  const opaque = typeof opts.token === "function" || typeof opts.headers === "function" || opts.getTicket !== undefined;
  if (typeof opts.url === "function" || (opaque && opts.shareTabs === undefined)) return undefined;
  const token = typeof opts.token === "string" ? `:${fnv1a(opts.token)}` : "";
  const headers = typeof opts.headers === "object" && opts.headers !== null ? `:${fnv1a(JSON.stringify(opts.headers))}` : "";
  return `fanout:${String(opts.url)}${token}${headers}`;
}

/** A short non-cryptographic digest: names the group without putting a credential in it. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(36);
}

/** Insertion-ordered set that forgets its oldest ids past `max`. */
class RecentIds {
  private readonly ids = new Set<string>();
  constructor(private readonly max: number) {}
  /** False when `id` was already there. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value as string);
    return true;
  }
}

/**
 * One FanoutClient's membership in its tab group: every client of the group (one per tab, or
 * several in one tab) is a member; the member holding the group's Web Lock leads and runs the
 * one stream, on the union of the members' names; the others get its messages over a
 * BroadcastChannel. Each member hands its client only the messages of its own channels and
 * patterns, each envelope once. Every member follows the stream's position (the ids of all
 * messages, its own or not), so when the leader's tab closes, the member the lock passes to
 * opens the stream again from the last id it saw; envelopes it had already seen (the new
 * stream replays from a slightly earlier point when broadcasts were still in flight) are
 * dropped by id, so nothing is lost or delivered twice.
 */
export class TabMember {
  readonly id = randomId();
  private readonly bc: BroadcastChannel;
  private readonly seen = new RecentIds(SEEN_MAX);
  /** Every member's names as its hellos and wants said, and whether it is live (for a takeover). */
  private readonly tabs = new Map<string, NameSet & { live: boolean }>();
  private readonly pending = new Map<string, Pending & { msg: Wire }>();
  private readonly abort = new AbortController();
  private leader?: TabLeader;
  private releaseLocks: Array<() => void> = [];
  private live = false;
  private everLive = false;
  private closed = false;

  constructor(
    readonly group: string,
    private readonly host: MemberHost,
    private lastId: string,
  ) {
    this.bc = new BroadcastChannel(group);
    this.bc.onmessage = (e: MessageEvent) => {
      if (isWire(e.data)) this.receive(e.data);
    };
  }

  start(): void {
    const l = locks()!;
    const signal = this.abort.signal;
    // Held for this member's life: the leader asks the lock manager which members still exist.
    void l.request(`${this.group}:tab:${this.id}`, { signal }, () => new Promise<void>((r) => this.releaseLocks.push(r))).catch(() => undefined);
    this.send({ t: "hello", from: this.id, ...this.host.names(), live: false });
    void l
      .request(`${this.group}:leader`, { signal }, async () => {
        if (this.closed) return;
        const released = new Promise<void>((r) => this.releaseLocks.push(r));
        await this.lead();
        await released;
      })
      .catch(() => undefined);
  }

  get leading(): boolean {
    return this.leader !== undefined;
  }

  /** What `subscribe`/`unsubscribe` do on a shared client: the leader changes the stream, this member its filter. */
  change(add: Names, remove: Names, opts: SubscribeOptions = {}): Promise<SubscribedInfo> {
    if (this.closed) return Promise.reject(new FanoutClientError("closed", "the client was closed"));
    const before = this.host.names();
    const a = { channels: unique(add.channels), patterns: unique(add.patterns) };
    const r = { channels: unique(remove.channels), patterns: unique(remove.patterns) };
    // As an unshared client: a name both added and removed stays, and nothing left is refused.
    const channels = changedNames(before.channels, a.channels, r.channels);
    const patterns = changedNames(before.patterns, a.patterns, r.patterns);
    if (channels.length + patterns.length === 0) return Promise.reject(noSubscriptionsLeft());
    this.host.setNames(channels, patterns);
    const request = `r${randomId()}`;
    const msg: Wire = { t: "want", from: this.id, request, channels, patterns, ...(opts.since ? { since: opts.since } : {}) };
    return new Promise<SubscribedInfo>((resolve, reject) => {
      this.pending.set(request, { resolve, reject, before, add: a, remove: r, msg });
      this.send(msg);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.send({ t: "bye", from: this.id });
    this.leader?.end();
    this.leader = undefined;
    const err = new FanoutClientError("closed", "the client was closed");
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.abort.abort();
    for (const r of this.releaseLocks) r();
    this.releaseLocks = [];
    this.bc.close();
  }

  /** Posts to the other members, and handles it here too (a BroadcastChannel skips its sender). */
  send(msg: Wire): void {
    if (this.closed && msg.t !== "bye") return;
    try {
      this.bc.postMessage(msg);
    } catch {
      // Closed channel: this member is leaving anyway.
    }
    queueMicrotask(() => this.receive(msg));
  }

  private async lead(): Promise<void> {
    // Members whose tab is gone (closed without a word) leave the union.
    const held = new Set(((await locks()!.query()).held ?? []).map((h) => h.name));
    for (const id of [...this.tabs.keys()]) if (id !== this.id && !held.has(`${this.group}:tab:${id}`)) this.tabs.delete(id);
    if (this.closed) return;
    this.tabs.set(this.id, { ...this.host.names(), live: this.live });
    this.leader = new TabLeader(this, this.host, this.tabs, this.lastId, () => locks()!.query(), this.group);
    this.send({ t: "leader", from: this.id });
    this.leader.start();
  }

  private receive(msg: Wire): void {
    if (this.closed) return;
    if ("id" in msg && typeof msg.id === "string" && msg.id !== "") {
      this.lastId = msg.id;
      this.host.position(msg.id);
    }
    switch (msg.t) {
      case "hello":
        this.tabs.set(msg.from, { channels: msg.channels, patterns: msg.patterns, live: msg.live });
        this.leader?.joined(msg.from, msg.live);
        return;
      case "want": {
        const prev = this.tabs.get(msg.from);
        this.tabs.set(msg.from, { channels: msg.channels, patterns: msg.patterns, live: prev?.live ?? false });
        this.leader?.wanted(msg.from, msg.request, prev, msg.since);
        return;
      }
      case "bye":
        this.tabs.delete(msg.from);
        this.leader?.left();
        return;
      case "leader":
        // A new leader: tell it what this member wants, and ask again for what is unanswered.
        if (msg.from !== this.id) this.send({ t: "hello", from: this.id, ...this.host.names(), live: this.live });
        for (const p of this.pending.values()) this.send(p.msg);
        return;
      case "event":
        this.onEvent(msg);
        return;
      case "status":
        if (msg.status === "live" || msg.status === "closed") return;
        this.live = false;
        this.host.status(this.everLive ? "reconnecting" : "connecting");
        return;
      case "ready":
        // Every member keeps track of who is live: a new leader resumes their names at once.
        for (const t of this.tabs.values()) if (covers(msg, t)) t.live = true;
        if (covers(msg, this.host.names())) this.goLive({ connection: msg.connection, ...this.host.names() });
        return;
      case "reset":
        this.host.reset(msg.info);
        return;
      case "ack": {
        const tab = this.tabs.get(msg.to);
        if (tab && msg.request === JOIN) tab.live = true;
        if (msg.to !== this.id) return;
        this.acked(msg.request, msg.connection);
        return;
      }
      case "nack":
        if (msg.to !== this.id) return;
        this.refused(msg.request, fromWire(msg.error));
        return;
      case "error":
        if (msg.fatal) this.host.stop(fromWire(msg.error));
        else this.host.error(fromWire(msg.error));
        return;
    }
  }

  private onEvent(msg: Extract<Wire, { t: "event" }>): void {
    // Each envelope once: a new leader's resume may replay what the old one had sent.
    if (!this.seen.add(msg.envelope.id)) return;
    const { channels, patterns } = this.host.names();
    let envelope = msg.envelope;
    if (channels.includes(envelope.channel)) {
      if (envelope.pattern !== undefined) {
        const { pattern: _, ...rest } = envelope;
        envelope = rest;
      }
    } else {
      // The shared stream names the pattern (or channel) of whichever tab asked first: name this tab's own.
      const p = patterns.find((g) => globMatch(g, envelope.channel));
      if (p === undefined) return;
      if (envelope.pattern !== p) envelope = { ...envelope, pattern: p };
    }
    this.host.deliver(envelope, { type: msg.type, data: envelope === msg.envelope ? msg.data : JSON.stringify(envelope), lastEventId: msg.id });
  }

  private goLive(info: ReadyInfo): void {
    this.live = true;
    this.everLive = true;
    const tab = this.tabs.get(this.id);
    if (tab) tab.live = true;
    this.host.status("live");
    this.host.ready(info);
  }

  private acked(request: string, connection: string | undefined): void {
    if (request === JOIN) {
      if (!this.live) this.goLive({ connection: connection ?? "", ...this.host.names() });
      return;
    }
    const p = this.pending.get(request);
    if (!p) return;
    this.pending.delete(request);
    const names = this.host.names();
    p.resolve({
      request,
      ...names,
      added: { channels: p.add.channels.filter((n) => !p.before.channels.includes(n)), patterns: p.add.patterns.filter((n) => !p.before.patterns.includes(n)) },
      removed: { channels: p.remove.channels.filter((n) => p.before.channels.includes(n)), patterns: p.remove.patterns.filter((n) => p.before.patterns.includes(n)) },
    });
  }

  private refused(request: string, err: FanoutClientError): void {
    if (request === JOIN) {
      this.host.stop(err);
      return;
    }
    const p = this.pending.get(request);
    if (!p) return;
    this.pending.delete(request);
    // Undo this call's change only (others may have changed the names meanwhile).
    const now = this.host.names();
    this.host.setNames(undoneNames(now.channels, p.before.channels, p.add.channels, p.remove.channels), undoneNames(now.patterns, p.before.patterns, p.add.patterns, p.remove.patterns));
    p.reject(err);
  }
}

