import { globMatch } from "../../protocol/glob.js";
import type { Publisher } from "../../protocol/publisher.js";
import type { PresenceIdentity, PresenceStore } from "./presence-store.js";

/** Channels refreshed and swept at once in a heartbeat. */
const BEAT_PARALLEL = 64;

/** The SSE event type (publish `type`) of join/leave events on a presence channel. */
export const PRESENCE_EVENT = "presence";

export interface PresenceSettings {
  /** Redis globs of the channels with presence (FANOUT_PRESENCE_CHANNELS). */
  channels: string[];
  ttlMs: number;
  heartbeatMs: number;
}

/**
 * This relay's side of presence: it enters streams subscribed to presence channels into the
 * shared store, refreshes their entries every heartbeat, sweeps the channels it has members
 * on for entries of relays that died, and publishes `presence` join/leave events on the
 * channel itself (through the broker, so every relay's subscribers get them, in the log with
 * the channel's messages). Store calls for one stream run in order (a leave never overtakes
 * its join); a failing call is reported and the next heartbeat repairs what it can.
 */
export class PresenceTracker {
  /** Channel → this relay's streams on it and who they are. */
  private readonly local = new Map<string, Map<string, PresenceIdentity>>();
  private readonly chains = new Map<string, Promise<void>>();
  private timer?: ReturnType<typeof setInterval>;
  /** A beat still running when the next is due is not doubled. */
  private beating = false;

  constructor(
    private readonly store: PresenceStore,
    private readonly publisher: Publisher,
    private readonly settings: PresenceSettings,
    private readonly fault: (where: string, err: unknown) => void,
    /** Counts each event published (fanout_presence_events_total). */
    private readonly announced: (action: "join" | "leave") => void = () => undefined,
  ) {}

  get enabled(): boolean {
    return this.settings.channels.length > 0;
  }

  tracks(channel: string): boolean {
    return this.settings.channels.some((g) => globMatch(g, channel));
  }

  /** The stream joins those of `channels` that have presence. */
  enter(stream: string, who: PresenceIdentity, channels: readonly string[]): Promise<void> {
    const mine = channels.filter((ch) => this.tracks(ch));
    if (mine.length === 0) return Promise.resolve();
    for (const ch of mine) {
      let m = this.local.get(ch);
      if (!m) this.local.set(ch, (m = new Map()));
      m.set(stream, who);
    }
    return this.serial(stream, async () => {
      for (const ch of mine) {
        if (await this.store.join(ch, stream, who, Date.now() + this.settings.ttlMs)) await this.announce(ch, "join", who);
      }
    });
  }

  /** The stream leaves those of `channels` it is a member of. */
  exit(stream: string, channels: readonly string[]): Promise<void> {
    const mine = channels.filter((ch) => this.local.get(ch)?.delete(stream));
    for (const ch of mine) if (this.local.get(ch)?.size === 0) this.local.delete(ch);
    if (mine.length === 0) return Promise.resolve();
    return this.serial(stream, async () => {
      for (const ch of mine) {
        const left = await this.store.leave(ch, stream);
        if (left) await this.announce(ch, "leave", left);
      }
    });
  }

  start(): void {
    if (!this.enabled) return;
    this.timer = setInterval(() => void this.beat(), this.settings.heartbeatMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Resolves once every store call queued so far is done (drain: leaves go out before the broker closes). */
  async idle(): Promise<void> {
    await Promise.all([...this.chains.values()]);
  }

  /**
   * Refreshes this relay's entries and sweeps expired ones on the same channels: a dead
   * relay's members leave at most a TTL after its last refresh, plus one heartbeat.
   * Entries swept although this relay is alive (it stalled past the TTL) are entered again.
   */
  async beat(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      // Channels in parallel, a bounded number at a time: one round trip per channel in
      // sequence would make a beat over many channels longer than the TTL.
      const channels = [...this.local.keys()];
      for (let i = 0; i < channels.length; i += BEAT_PARALLEL) await Promise.all(channels.slice(i, i + BEAT_PARALLEL).map((ch) => this.beatChannel(ch)));
    } finally {
      this.beating = false;
    }
  }

  private async beatChannel(ch: string): Promise<void> {
    const members = this.local.get(ch);
    if (!members) return;
    try {
      const now = Date.now();
      const missing = await this.store.refresh(ch, [...members.keys()], now + this.settings.ttlMs);
      for (const stream of missing) {
        const who = this.local.get(ch)?.get(stream);
        if (who && (await this.store.join(ch, stream, who, Date.now() + this.settings.ttlMs))) await this.announce(ch, "join", who);
      }
      for (const who of await this.store.sweep(ch, now)) await this.announce(ch, "leave", who);
    } catch (err) {
      this.fault("presence heartbeat", err);
    }
  }

  /** Sweeps one channel now (a presence read must not list the dead). */
  async sweep(channel: string): Promise<void> {
    for (const who of await this.store.sweep(channel, Date.now())) await this.announce(channel, "leave", who);
  }

  list(channel: string, max: number) {
    return this.store.list(channel, Date.now(), max);
  }

  stats(channel: string) {
    return this.store.stats(channel, Date.now());
  }

  private announce(channel: string, action: "join" | "leave", who: PresenceIdentity): Promise<unknown> {
    const member = { sub: who.sub, ...(who.info ? { info: who.info } : {}) };
    this.announced(action);
    return this.publisher.publish([{ channel, type: PRESENCE_EVENT, data: JSON.stringify({ action, channel, member }) }]);
  }

  private serial(stream: string, op: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(stream) ?? Promise.resolve();
    const next = prev.then(op).catch((err) => this.fault("presence", err));
    this.chains.set(stream, next);
    void next.then(() => {
      if (this.chains.get(stream) === next) this.chains.delete(stream);
    });
    return next;
  }
}
