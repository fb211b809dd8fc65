import { CursorEncoder } from "../protocol/cursor.js";
import { unavailable } from "../protocol/errors.js";
import { comparePositions, type Position, ZERO } from "../protocol/position.js";
import type { Broker, BrokerListener, Delivery, MessageLog } from "./broker/broker.js";
import { SubscriptionRegistry, type SubscriptionActivity } from "./subscription-registry.js";
import type { Client } from "./client.js";
import { encodeDelivery, type Frame } from "./message-frame.js";
import type { RelayMetrics } from "./metrics.js";
import { RateMeter } from "./rate-meter.js";
import { FaultLog } from "./fault-log.js";

const CATCH_UP_PAGE = 500;
const CATCH_UP_RETRY_MS = 250;

/**
 * One subscription link of the broker (one Redis connection; one per shard when the log is
 * sharded) and the partitions whose live messages arrive on it. A drop of one link holds and
 * catches up only its partitions: the other links keep delivering.
 */
interface Link {
  readonly partitions: readonly number[];
  backlog: Delivery[] | undefined;
  catchUpRunning: boolean;
  /** A live log message arrived while the backlog was full (see `deliver`). */
  backlogOverflowed: boolean;
  /** Between the broker's `down` and `recovered`. */
  down: boolean;
  /** Drops so far: a catch-up that saw another one starts its pass again. */
  drops: number;
  catchUpRetry?: NodeJS.Timeout;
  /** The dispatch stamp of this link's last live publish (for its `again` copies, which follow it on the same link). */
  liveStamp: number;
  /** Every `down` since the last catch-up was a planned resubscribe (not counted as a catch-up). */
  plannedOnly?: boolean;
}

/**
 * Routes broker messages to clients over the relay's reference-counted subscriptions
 * (subscription-registry.ts). Each message is encoded once and the same bytes are queued to
 * every matching client. A publish that matches several of the relay's subscriptions arrives
 * as several copies (the later ones marked `again`); each gets the same dispatch stamp, and a
 * client already stamped with it is skipped, so a client gets one copy per publish, the
 * first (the exact channel's, when it has one), with or without a log position.
 *
 * The hub also keeps the relay cursor: the highest log position received per partition.
 * Messages of a partition arrive in log order, so every client has been offered everything
 * up to it; that makes it a valid Last-Event-ID for every client, and it is what the hub
 * catches up from when the broker link comes back.
 */
export class Hub implements BrokerListener {
  private readonly subs: SubscriptionRegistry;
  readonly cursor: Position[];
  private readonly cursorText: CursorEncoder;
  private readonly links: Link[];
  /** Per partition, the link its live messages arrive on. */
  private readonly linkOf: Link[];
  private settling?: Promise<void>;
  private settleNext?: Promise<void>;
  /** Messages in (per routed copy) and frames out, per second over the last 10 s. */
  readonly rates = new RateMeter();
  /** Last dispatch stamp handed out. */
  private stamp = 0;
  private readonly faults = new FaultLog();

  constructor(
    private readonly broker: Broker,
    private readonly log: MessageLog,
    private readonly metrics: RelayMetrics,
    unsubscribeDelayMs: number,
    /** Live messages held while catching up after a broker drop (`FANOUT_CATCHUP_BACKLOG`). */
    private readonly maxBacklog: number,
  ) {
    this.subs = new SubscriptionRegistry(broker, metrics, unsubscribeDelayMs);
    this.cursor = Array.from({ length: broker.partitions }, () => ZERO);
    this.cursorText = new CursorEncoder(broker.partitions);
    const groups = broker.links ?? [Array.from({ length: broker.partitions }, (_, p) => p)];
    this.links = groups.map((partitions) => ({ partitions, backlog: undefined, catchUpRunning: false, backlogOverflowed: false, down: false, drops: 0, liveStamp: 0 }));
    this.linkOf = [];
    this.links.forEach((l) => l.partitions.forEach((p) => (this.linkOf[p] = l)));
  }

  /** True once the relay cursor starts from the log's end (see `init`). */
  initialized = false;

  /**
   * Starts the relay cursor at the log's current end, so new clients' ids are meaningful
   * (a cursor left at zero would make a resume replay the whole retained history). While the
   * log is unreachable at start-up this retries; streams are refused until it succeeds.
   */
  async init(retryMs = 500): Promise<void> {
    try {
      for (let p = 0; p < this.broker.partitions; p++) this.advance(p, (await this.log.state(p)).last);
      this.initialized = true;
    } catch (err) {
      this.faults.report("reading the log's end", err, "retrying");
      setTimeout(() => void this.init(retryMs), retryMs).unref();
    }
  }

  get cursorString(): string {
    return this.cursorText.toString();
  }

  // ---- broker side -------------------------------------------------------------------

  deliver(d: Delivery, link = 0): void {
    try {
      const l = this.links[link];
      if (l.backlog) {
        if (l.backlog.length < this.maxBacklog) l.backlog.push(d);
        // A log message is not held but read again: the catch-up makes another pass over the
        // log before it goes live. A plain message (not in the log) is lost.
        else if (d.partition !== undefined) l.backlogOverflowed = true;
        else this.fault("catch-up backlog full", new Error(`over ${this.maxBacklog} live messages held; dropped a plain one`));
        return;
      }
      this.dispatchLive(d, l);
    } catch (err) {
      this.fault("hub deliver", err);
    }
  }

  /** Counted and logged (rate-limited); the message is skipped and the relay goes on. */
  fault(where: string, err: unknown): void {
    try {
      this.metrics.messageFaults.inc({ where });
      this.faults.report(where, err);
    } catch {
      /* reporting must not throw into a handler */
    }
  }

  down(link = 0, planned = false): void {
    // Hold live messages from the moment the link is back until the log catch-up is done.
    const l = this.links[link];
    l.plannedOnly = (l.plannedOnly ?? true) && planned;
    l.down = true;
    l.drops++;
    l.backlog ??= [];
  }

  recovered(link = 0): void {
    const l = this.links[link];
    l.down = false;
    l.backlog ??= [];
    void this.catchUp(l);
  }

  /** Reads the link's partitions from the relay cursor on, then releases its held live messages. */
  private async catchUp(l: Link): Promise<void> {
    if (l.catchUpRunning) return;
    l.catchUpRunning = true;
    try {
      let recovered = 0;
      // Passes over the log repeat until one ends with nothing left out: no live log message
      // was dropped for want of backlog room, and the link did not drop again meanwhile (a
      // drop during a pass opens a gap in partitions the pass has already read). Nothing
      // awaits between the last pass and going live, so no message can arrive in between.
      let again: boolean;
      do {
        const drops = l.drops;
        l.backlogOverflowed = false;
        for (const p of l.partitions) {
          for (;;) {
            const page = await this.log.read(p, this.cursor[p], CATCH_UP_PAGE);
            for (const e of page) {
              let s = 0;
              recovered += this.subs.live.route(e, (d) => this.dispatch(d, d.again ? s : (s = ++this.stamp))) > 0 ? 1 : 0;
            }
            // Entries nobody here subscribes to still move the cursor past them.
            if (page.length > 0) this.advance(p, page[page.length - 1].pos);
            if (page.length < CATCH_UP_PAGE) break;
          }
        }
        // Down again: live messages stay held; the next `recovered` catches up from here.
        if (l.down) return;
        again = l.backlogOverflowed || l.drops !== drops;
      } while (again);
      const held = l.backlog ?? [];
      l.backlog = undefined;
      for (const d of held) this.dispatchLive(d, l);
      // `fanout_catchups_total` (and its alert) counts link drops, not planned resubscribes.
      if (l.plannedOnly !== true) this.metrics.catchUps.inc();
      l.plannedOnly = undefined;
      this.metrics.caughtUp.inc(recovered);
    } catch (err) {
      // The command link may come back after the subscription link: retry from the same
      // cursor until the log is readable. Live messages stay held meanwhile.
      // Rate-limited: while only the command link is down this fails every CATCH_UP_RETRY_MS.
      this.faults.report("catch-up from the log", err, "retrying");
      if (!l.catchUpRetry) {
        l.catchUpRetry = setTimeout(() => {
          l.catchUpRetry = undefined;
          void this.catchUp(l);
        }, CATCH_UP_RETRY_MS);
        l.catchUpRetry.unref();
      }
    } finally {
      l.catchUpRunning = false;
    }
  }

  private advance(partition: number, pos: Position): void {
    if (comparePositions(pos, this.cursor[partition]) > 0) {
      this.cursor[partition] = pos;
      this.cursorText.set(partition, pos);
    }
  }

  private dispatchLive(d: Delivery, l: Link): void {
    this.dispatch(d, d.again ? l.liveStamp : (l.liveStamp = ++this.stamp));
  }

  /** Never throws: one failing client or message costs only itself. */
  private dispatch(d: Delivery, stamp: number): void {
    try {
      if (d.pos !== undefined && d.partition !== undefined) this.advance(d.partition, d.pos);
      this.metrics.messagesIn.inc();
      this.rates.markIn();
      const clients = this.subs.routeTo(d.channel, d.pattern, Date.now());
      if (!clients || clients.size === 0) return;
      let frame: Frame | undefined;
      let sent = 0;
      for (const c of clients) {
        if (c.stamp === stamp) continue;
        c.stamp = stamp;
        frame ??= { delivery: d, cursor: this.cursor.slice(), bytes: encodeDelivery(d, this.cursorText.toString()) };
        try {
          c.offer(frame);
        } catch (err) {
          this.fault("client offer", err);
        }
        sent++;
      }
      if (sent === 0) return;
      this.metrics.messagesOut.inc(sent);
      this.rates.mark(sent);
      this.metrics.latency.observe(Math.max(0, Date.now() - d.ts) / 1000);
    } catch (err) {
      this.fault("hub dispatch", err);
    }
  }

  // ---- client side -------------------------------------------------------------------

  /**
   * Registers a client on all its channels and patterns and resolves once every broker
   * subscription is confirmed. Frames arriving meanwhile are held by the client. On failure
   * the client is removed again and a 503 is thrown.
   */
  async attach(c: Client): Promise<void> {
    try {
      await this.subs.add(c);
    } catch (err) {
      this.detach(c);
      // The broker's error text (Redis's) is for the log, not for subscribers.
      console.warn("[fanout] subscription failed:", (err as Error).message);
      throw unavailable("subscription failed; retry shortly");
    }
    await this.settle();
  }

  /**
   * Moves the relay cursor to the log's settled end in every partition. Without it, a
   * partition this relay has had no traffic in keeps an old position, and a new stream's
   * first id would make a resume replay messages from before the client subscribed. Calls
   * arriving while one runs share the next run (it must start after they were made).
   */
  private settle(): Promise<void> {
    if (!this.settling) {
      this.settling = this.runSettle().finally(() => {
        this.settling = undefined;
      });
      return this.settling;
    }
    this.settleNext ??= this.settling.then(() => {
      this.settleNext = undefined;
      return this.settle();
    });
    return this.settleNext;
  }

  private async runSettle(): Promise<void> {
    try {
      const ends = await this.log.settled();
      // While a link catches up, its held messages may sit below these ends: leave its
      // partitions' cursor alone.
      ends.forEach((pos, p) => {
        if (!this.linkOf[p]?.backlog) this.advance(p, pos);
      });
    } catch {
      // A stale cursor only means a resume may replay a little more; never less.
    }
  }

  /**
   * Adds channels and patterns to a client already attached (a dynamic subscription, whose
   * names the caller has already put in the client's lists) and resolves, like `attach`, once
   * the broker confirmed them and the relay cursor is settled. On failure the names are
   * released again and a 503 is thrown; the caller takes them out of the client's lists.
   */
  async attachMore(c: Client, channels: readonly string[], patterns: readonly string[]): Promise<void> {
    try {
      await this.subs.addNames(c, channels, patterns);
    } catch (err) {
      this.subs.removeNames(c, channels, patterns);
      console.warn("[fanout] subscription failed:", (err as Error).message);
      throw unavailable("subscription failed; retry shortly");
    }
    await this.settle();
  }

  /** Takes a client off some of its names (dynamic unsubscribe). */
  detachSome(c: Client, channels: readonly string[], patterns: readonly string[]): void {
    this.subs.removeNames(c, channels, patterns);
  }

  detach(c: Client): void {
    this.subs.remove(c);
  }

  stats(): { channels: Record<string, number>; patterns: Record<string, number> } {
    return this.subs.stats();
  }

  /** Each subscription's subscribers, messages routed and last activity (fleet view, alerts). */
  activity(): Iterable<SubscriptionActivity> {
    return this.subs.activity();
  }
}
