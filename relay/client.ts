import { comparePositions, type Position } from "../protocol/position.js";
import { formatCursor } from "../protocol/cursor.js";
import type { SseConnection } from "./sse/sse-connection.js";
import type { Frame } from "./message-frame.js";
import { encodeDelivery, encodeHistory } from "./message-frame.js";
import type { Delivery } from "./broker/broker.js";

/** How many bytes of live frames a client holds while its stream is set up or replayed. */
export interface HoldLimits {
  /** Past this, log messages are no longer held but read again from the log (`takeDropped`). */
  logBytes: number;
  /** Past this, the client is cut ("hard"): plain messages are not in the log, so they can only be held. */
  maxBytes: number;
}

/**
 * One subscriber as the hub sees it. Until `goLive`, frames are held (the stream is being
 * set up or replayed); afterwards they go straight to the connection's queue. A replay paced
 * by a slow reader can take long while live traffic goes on, so holding is bounded: log
 * messages beyond `HoldLimits.logBytes` are dropped and their partitions read again from the
 * log before going live, which keeps per-partition order and costs no memory.
 *
 * `delivered` is the last log position sent per partition: a frame at or below it is a copy
 * this client already has (replayed, or read again from the log after being dropped while
 * held). Copies of one publish routed by several of the client's subscriptions are told
 * apart earlier, by the hub's `stamp` (it covers plain messages too, which have no position).
 */
export class Client {
  private held: Frame[] | undefined = [];
  private heldBytes = 0;
  /** Partitions with live log messages dropped from `held`. */
  private dropped = new Set<number>();
  /** Set by `begin`: where this client's stream starts. */
  readonly delivered: Position[] = [];
  /**
   * Set when the client resumed with a cursor ahead of this relay's own (it came from
   * another relay): shared frames would carry a lower cursor, so this client gets frames
   * with the merged cursor until the relay's cursor passes its own.
   */
  private aheadOfRelay = false;
  /** The hub's stamp of the last publish offered to this client (one copy per publish). */
  stamp = 0;

  constructor(
    readonly id: string,
    readonly conn: SseConnection,
    /** Replaced (never edited in place) when a dynamic subscription changes them. */
    public channels: string[],
    public patterns: string[],
    private readonly holdLimits: HoldLimits,
  ) {}

  /** Fixes the starting cursor: the resume cursor, or the relay cursor for a fresh stream. */
  begin(start: Position[]): void {
    this.delivered.splice(0, this.delivered.length, ...start);
  }

  offer(f: Frame): void {
    if (this.held) this.hold(this.held, f);
    else this.write(f);
  }

  private hold(held: Frame[], f: Frame): void {
    const size = f.bytes.length;
    if (f.delivery.partition !== undefined && f.delivery.pos !== undefined && this.heldBytes + size > this.holdLimits.logBytes) {
      this.dropped.add(f.delivery.partition);
      return;
    }
    held.push(f);
    this.heldBytes += size;
    if (this.heldBytes > this.holdLimits.maxBytes) this.conn.destroy("hard");
  }

  /** Some live log messages were dropped while held (see `takeDropped`). */
  get droppedAny(): boolean {
    return this.dropped.size > 0;
  }

  /**
   * The partitions whose live log messages were dropped while held, to be read from the log
   * (from `delivered`) before `goLive`; a held frame at or below what that reading sends is
   * skipped then as a copy. Empty once nothing more was dropped.
   */
  takeDropped(): number[] {
    const parts = [...this.dropped].sort((a, b) => a - b);
    this.dropped.clear();
    return parts;
  }

  /**
   * Entries already sent as history of names added with `since` (up to `upTo` per partition):
   * live copies of them held meanwhile, or read again from the log, are skipped.
   */
  private sentAsHistory?: { matches: (channel: string) => boolean; upTo: Position[] };

  /** Holds live frames again (a dynamic subscription replaying history); `goLive` ends it. */
  pause(): void {
    this.held ??= [];
  }

  /** See `sentAsHistory`; cleared once the client is live again. */
  skipHistory(matches: (channel: string) => boolean, upTo: Position[]): void {
    this.sentAsHistory = { matches, upTo };
  }

  /**
   * Where this client's stream stands: every message up to the relay cursor has been offered
   * to a live client, and a client resumed from another relay may be ahead of it.
   */
  position(relayCursor: Position[]): Position[] {
    return merge(relayCursor, this.delivered);
  }

  /** Sends a replayed entry (a frame made for this client alone). */
  sendOwn(d: Delivery): void {
    if (this.isHistory(d) || !this.advance(d)) return;
    this.conn.send(encodeDelivery(d, formatCursor(this.delivered)));
  }

  /** Sends a history entry of a name added with `since` (it does not move the cursor). */
  sendHistory(d: Delivery): void {
    this.conn.send(encodeHistory(d));
  }

  goLive(relayCursor: Position[]): void {
    this.aheadOfRelay = !dominates(relayCursor, this.delivered);
    const held = this.held ?? [];
    this.held = undefined;
    this.heldBytes = 0;
    for (const f of held) this.write(f);
    // Frames arriving from now on are past the history's end (the relay cursor was settled).
    this.sentAsHistory = undefined;
  }

  private isHistory(d: Delivery): boolean {
    const h = this.sentAsHistory;
    if (!h || d.pos === undefined || d.partition === undefined) return false;
    return comparePositions(d.pos, h.upTo[d.partition]) <= 0 && h.matches(d.channel);
  }

  private write(f: Frame): void {
    if (this.isHistory(f.delivery) || !this.advance(f.delivery)) return;
    if (this.aheadOfRelay) {
      if (dominates(f.cursor, this.delivered)) {
        this.aheadOfRelay = false;
      } else {
        this.conn.send(encodeDelivery(f.delivery, formatCursor(merge(f.cursor, this.delivered))));
        return;
      }
    }
    this.conn.send(f.bytes);
  }

  private advance(d: Delivery): boolean {
    if (d.pos === undefined || d.partition === undefined) return true;
    if (comparePositions(d.pos, this.delivered[d.partition]) <= 0) return false;
    this.delivered[d.partition] = d.pos;
    return true;
  }
}

function dominates(a: Position[], b: Position[]): boolean {
  for (let i = 0; i < b.length; i++) if (comparePositions(a[i], b[i]) < 0) return false;
  return true;
}

function merge(a: Position[], b: Position[]): Position[] {
  return a.map((p, i) => (comparePositions(p, b[i]) >= 0 ? p : b[i]));
}
