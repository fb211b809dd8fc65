import type { ConnectionStatus } from "./fanout-client.js";
import type { Envelope, ReadyInfo, ResetInfo } from "./envelope.js";
import type { FanoutClientError } from "./errors.js";
import type { SseEvent } from "./sse-parser.js";
import type { Names, SubscribeOptions, SubscribedInfo } from "./subscription-changes.js";
import { JOIN, wireError, type NameSet, type Wire } from "./tab-wire.js";

/** The stream the leading tab runs for its group: a FanoutClient of its own that does not share. */
export interface SharedStream {
  subscribe(names: Names, opts?: SubscribeOptions): Promise<SubscribedInfo>;
  unsubscribe(names: Names): Promise<SubscribedInfo>;
  readonly subscriptions: NameSet;
  readonly lastEventId: string;
  readonly status: ConnectionStatus;
  on(type: string, handler: (envelope: Envelope, raw: SseEvent) => void): () => void;
  onReady(handler: (info: ReadyInfo) => void): () => void;
  onReset(handler: (reason: string, info: ResetInfo) => void): () => void;
  onStatus(handler: (status: ConnectionStatus) => void): () => void;
  onError(handler: (err: FanoutClientError) => void): () => void;
  close(): void;
}

interface Link {
  readonly id: string;
  send(msg: Wire): void;
}

/** How often the leader drops the names of members whose tab went away without a word. */
const SWEEP_MS = 5000;

/**
 * The leading member's job: one stream on the union of every member's names, changed with
 * dynamic subscriptions as members come, go and change theirs (one change at a time, each
 * acked to the member that asked, or refused to it alone), and every message, status, ready
 * and reset of the stream broadcast to the group.
 */
export class TabLeader {
  private stream?: SharedStream;
  private chain: Promise<void> = Promise.resolve();
  private firstReady?: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void };
  private lastError?: FanoutClientError;
  private timer?: ReturnType<typeof setInterval>;
  private ended = false;

  constructor(
    private readonly member: Link,
    private readonly host: { openStream(names: NameSet, lastEventId: string): SharedStream },
    /** Shared with the member, which keeps it current from the group's hellos, wants and byes. */
    private readonly tabs: Map<string, NameSet & { live: boolean }>,
    private readonly lastId: string,
    private readonly queryLocks: () => Promise<{ held?: Array<{ name?: string }> }>,
    private readonly group: string,
  ) {}

  /**
   * Opens the stream at once on the names of the members that were live (and this one's), from
   * the last id seen, so a takeover loses nothing; members still waiting for their first names
   * join through dynamic subscriptions, each refused alone if its names are not allowed.
   */
  start(): void {
    const initial = this.union(([id, t]) => t.live || id === this.member.id);
    if (initial.channels.length + initial.patterns.length > 0) this.open(initial);
    for (const [id, t] of this.tabs) if (!t.live && id !== this.member.id) this.joined(id, false);
    if (!this.stream) this.joined(this.member.id, false);
    this.timer = setInterval(() => void this.sweep(), SWEEP_MS);
  }

  end(): void {
    this.ended = true;
    clearInterval(this.timer);
    this.firstReady?.reject(new Error("ended"));
    this.stream?.close();
  }

  /** A member said hello: with `live` it only needs its names in the stream; otherwise it is acked. */
  joined(from: string, live: boolean): void {
    this.serial(async () => {
      try {
        await this.reconcile();
        if (!live) this.member.send({ t: "ack", from: this.member.id, to: from, request: JOIN, id: this.stream?.lastEventId ?? "" });
      } catch (err) {
        this.tabs.delete(from);
        this.member.send({ t: "nack", from: this.member.id, to: from, request: JOIN, error: wireError(err) });
        await this.reconcile().catch(() => undefined);
      }
    });
  }

  wanted(from: string, request: string, prev: (NameSet & { live: boolean }) | undefined, since?: string): void {
    this.serial(async () => {
      try {
        await this.reconcile(since);
        this.member.send({ t: "ack", from: this.member.id, to: from, request, id: this.stream?.lastEventId ?? "" });
      } catch (err) {
        if (prev) this.tabs.set(from, prev);
        else this.tabs.delete(from);
        this.member.send({ t: "nack", from: this.member.id, to: from, request, error: wireError(err) });
        await this.reconcile().catch(() => undefined);
      }
    });
  }

  left(): void {
    this.serial(() => this.reconcile().catch(() => undefined));
  }

  private serial(op: () => Promise<void>): void {
    this.chain = this.chain.then(() => (this.ended ? undefined : op()));
  }

  private union(keep: (e: [string, NameSet & { live: boolean }]) => boolean = () => true): NameSet {
    const channels = new Set<string>();
    const patterns = new Set<string>();
    for (const e of this.tabs) {
      if (!keep(e)) continue;
      e[1].channels.forEach((c) => channels.add(c));
      e[1].patterns.forEach((p) => patterns.add(p));
    }
    return { channels: [...channels], patterns: [...patterns] };
  }

  /** Brings the stream to the union of the members' names; resolves once that is live. */
  private async reconcile(since?: string): Promise<void> {
    const want = this.union();
    if (!this.stream) {
      if (want.channels.length + want.patterns.length === 0) return;
      this.open(want);
    }
    await this.firstReady!.promise;
    const s = this.stream!;
    const cur = s.subscriptions;
    const add = { channels: want.channels.filter((c) => !cur.channels.includes(c)), patterns: want.patterns.filter((p) => !cur.patterns.includes(p)) };
    const remove = { channels: cur.channels.filter((c) => !want.channels.includes(c)), patterns: cur.patterns.filter((p) => !want.patterns.includes(p)) };
    if (add.channels.length + add.patterns.length > 0) await s.subscribe(add, since ? { since } : undefined);
    // A stream keeps at least one name: the relay serves no empty stream.
    const keepsOne = want.channels.length + want.patterns.length > 0;
    if (keepsOne && remove.channels.length + remove.patterns.length > 0) await s.unsubscribe(remove);
    // Nothing to change while the stream reconnects: the member is live once the stream is.
    await untilLive(s);
  }

  private open(names: NameSet): void {
    const s = this.host.openStream(names, this.lastId);
    this.stream = s;
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined);
    this.firstReady = { promise, resolve, reject };
    const from = this.member.id;
    s.on("*", (envelope, raw) => this.member.send({ t: "event", from, envelope, type: raw.type, data: raw.data, id: raw.lastEventId }));
    s.onReady((info) => {
      this.member.send({ t: "ready", from, connection: info.connection, channels: info.channels, patterns: info.patterns, id: s.lastEventId });
      resolve();
    });
    s.onReset((_reason, info) => this.member.send({ t: "reset", from, info, id: s.lastEventId }));
    s.onStatus((status) => {
      if (this.ended) return;
      if (status !== "closed") {
        this.member.send({ t: "status", from, status });
        return;
      }
      // The stream stopped for good (a refusal): every member stops with it.
      const err = this.lastError;
      reject(err);
      this.member.send({ t: "error", from, error: err ? wireError(err) : { code: "closed", message: "the shared stream stopped", status: 0 }, fatal: true });
    });
    s.onError((err) => {
      this.lastError = err;
      // A refusal is reported just before the stream closes: that is the fatal one, sent above.
      queueMicrotask(() => {
        if (!this.ended && s.status !== "closed") this.member.send({ t: "error", from, error: wireError(err), fatal: false });
      });
    });
  }

  /** Members whose tab lock is gone left without a bye (a crashed or killed tab). */
  private async sweep(): Promise<void> {
    let held: Set<string | undefined>;
    try {
      held = new Set(((await this.queryLocks()).held ?? []).map((h) => h.name));
    } catch {
      return;
    }
    let gone = false;
    for (const id of [...this.tabs.keys()]) {
      if (id !== this.member.id && !held.has(`${this.group}:tab:${id}`)) {
        this.tabs.delete(id);
        gone = true;
      }
    }
    if (gone) this.left();
  }
}

/** Resolves when `s` is live (at once if it is), or has stopped (its refusal is broadcast then). */
function untilLive(s: SharedStream): Promise<void> {
  if (s.status === "live" || s.status === "closed") return Promise.resolve();
  return new Promise((resolve) => {
    const offs = [
      s.onReady(() => done()),
      s.onStatus((st) => {
        if (st === "closed") done();
      }),
    ];
    const done = () => {
      offs.forEach((off) => off());
      resolve();
    };
  });
}
