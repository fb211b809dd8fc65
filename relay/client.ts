import { comparePositions, type Position } from "../protocol/position.js";
import { formatCursor } from "../protocol/cursor.js";
import type { SseConnection } from "./sse/sse-connection.js";
import type { Frame } from "./message-frame.js";
import { encodeDelivery } from "./message-frame.js";
import type { Delivery } from "./broker/broker.js";

/**
 * One subscriber as the hub sees it. Until `goLive`, frames are held (the stream is being
 * set up or replayed); afterwards they go straight to the connection's queue.
 *
 * `delivered` is the last log position sent per partition: a frame at or below it is a copy
 * this client already has (replayed, or the same message matched a second subscription), so
 * every message reaches a client once.
 */
export class Client {
  private held: Frame[] | undefined = [];
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
    readonly channels: string[],
    readonly patterns: string[],
    private readonly maxHeld: number,
  ) {}

  /** Fixes the starting cursor: the resume cursor, or the relay cursor for a fresh stream. */
  begin(start: Position[]): void {
    this.delivered.splice(0, this.delivered.length, ...start);
  }

  offer(f: Frame): void {
    if (this.held) {
      this.held.push(f);
      if (this.held.length > this.maxHeld) this.conn.destroy("slow");
      return;
    }
    this.write(f);
  }

  /** Sends a replayed entry (a frame made for this client alone). */
  sendOwn(d: Delivery): void {
    if (!this.advance(d)) return;
    this.conn.send(encodeDelivery(d, formatCursor(this.delivered)));
  }

  goLive(relayCursor: Position[]): void {
    this.aheadOfRelay = !dominates(relayCursor, this.delivered);
    const held = this.held ?? [];
    this.held = undefined;
    for (const f of held) this.write(f);
  }

  private write(f: Frame): void {
    if (!this.advance(f.delivery)) return;
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
