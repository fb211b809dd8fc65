import { comparePositions, type Position } from "../protocol/position.js";
import { partitionOf } from "../protocol/partition.js";
import { globMatchBytes, toBytes } from "../protocol/glob.js";
import type { Delivery, LogEntry, MessageLog } from "./broker/broker.js";
import type { Client } from "./client.js";

export type ResetReason = "retention" | "unknown" | "malformed" | "limit";

/**
 * A page of the log is held in memory while it is sent (and, from Redis, is this client's
 * own copy), so pages are sized in bytes: the entry count of the next read follows the
 * average size of the last one, from one entry of a large message up to `PAGE_MAX` small ones.
 */
const PAGE_BYTES = 256 * 1024;
const PAGE_MAX = 500;
const PAGE_FIRST = 16;
/**
 * Replay waits for the socket to drain whenever more than this is held for the client, so a
 * backlog of any size goes out at the pace the client reads, never as one queued page.
 */
const PAUSE_BYTES = 64 * 1024;

/** A partition's log entries after `from`, read in pages sized in bytes (see `PAGE_BYTES`). */
async function* entriesAfter(log: MessageLog, p: number, from: Position): AsyncGenerator<LogEntry> {
  let count = PAGE_FIRST;
  for (;;) {
    const page = await log.read(p, from, count);
    if (page.length === 0) return;
    from = page[page.length - 1].pos;
    let bytes = 0;
    for (const e of page) bytes += e.dataJson.length + (e.metaJson?.length ?? 0) + e.channel.length + 64;
    yield* page;
    if (page.length < count) return;
    count = Math.max(1, Math.min(PAGE_MAX, Math.floor((PAGE_BYTES * page.length) / bytes)));
  }
}

/**
 * Which partitions can hold a client's messages: those of its channels, or all of them when
 * it has a pattern (a pattern can match a channel in any partition).
 */
function partitionsFor(c: Client, partitions: number): number[] {
  return partitionsOf(c.channels, c.patterns, partitions);
}

/**
 * Checks the resume cursor against the log: a position below what retention already
 * trimmed has a gap ("retention"); one beyond the log's end was never issued by this log
 * ("unknown": Redis lost its data, or another deployment). For an unknown position the
 * client's cursor is pulled back to the log's end, so it does not skip new messages.
 */
export async function checkCursor(log: MessageLog, c: Client, partitions: number): Promise<ResetReason | undefined> {
  let reason: ResetReason | undefined;
  for (const p of partitionsFor(c, partitions)) {
    const st = await log.state(p);
    const at = c.delivered[p];
    if (comparePositions(at, st.last) > 0) {
      c.delivered[p] = st.last;
      reason = "unknown";
    } else if (reason === undefined && comparePositions(at, st.gapBefore) < 0) {
      reason = "retention";
    }
  }
  return reason;
}

/**
 * Sends a resuming client everything after its cursor on its channels and patterns (in
 * `only` partitions, if given), in per-partition (hence per-channel) log order, paced by its
 * socket's drain. Live frames meanwhile are held by the client and later skipped when
 * already replayed. Returns "limit" when more than `limit` messages were due (the rest is
 * skipped).
 */
export async function replay(log: MessageLog, c: Client, partitions: number, limit: number, relayCursor: Position[], only?: number[]): Promise<{ sent: number; reset?: ResetReason }> {
  const exact = new Set(c.channels);
  const pats = c.patterns.map((p) => [p, toBytes(p)] as const);
  let sent = 0;
  for (const p of only ?? partitionsFor(c, partitions)) {
    // Entries of other channels do not move the client's cursor (keeping it at or below the
    // relay's, so it can share frames); the reading walks past them.
    for await (const e of entriesAfter(log, p, c.delivered[p])) {
      let d: Delivery | undefined;
      if (exact.has(e.channel)) d = e;
      else if (pats.length > 0) {
        const name = toBytes(e.channel);
        const hit = pats.find(([, pb]) => globMatchBytes(pb, name));
        if (hit) d = { ...e, pattern: hit[0] };
      }
      if (!d) continue;
      if (sent >= limit) {
        // Too much to replay: jump to the live position instead of flooding the client.
        for (let i = 0; i < partitions; i++) if (comparePositions(relayCursor[i], c.delivered[i]) > 0) c.delivered[i] = relayCursor[i];
        return { sent, reset: "limit" };
      }
      c.sendOwn(d);
      sent++;
      // drained() also ends when the connection closes.
      if (c.conn.held() > PAUSE_BYTES) await c.conn.drained();
      if (c.conn.closed) return { sent };
    }
  }
  return { sent };
}

/**
 * Reads from the log again the partitions whose live messages the client dropped instead of
 * holding them (see `Client.takeDropped`), until a pass drops nothing. The caller goes live
 * right after, in the same turn, so nothing can be dropped in between.
 */
export async function replayDropped(log: MessageLog, c: Client, partitions: number, limit: number, relayCursor: Position[]): Promise<{ sent: number; reset?: ResetReason }> {
  let sent = 0;
  for (let only = c.takeDropped(); only.length > 0 && !c.conn.closed; only = c.takeDropped()) {
    const r = await replay(log, c, partitions, limit - sent, relayCursor, only);
    sent += r.sent;
    if (r.reset) return { sent, reset: r.reset };
  }
  return { sent };
}

/**
 * History of names added to an open stream with `since`: the log's entries after `since` and
 * up to `upTo` (the moment the names were added) on channels `matches` accepts, in
 * per-partition order, paced like `replay`. They go out without an `id` (`Client.sendHistory`):
 * the stream's cursor is already past them. `reset` reports history that could not be sent
 * in full: trimmed by retention, or more than `limit` entries (the oldest are sent).
 */
export async function replayHistory(
  log: MessageLog,
  c: Client,
  parts: number[],
  since: Position[],
  upTo: Position[],
  matches: (channel: string) => string | true | undefined,
  limit: number,
): Promise<{ sent: number; reset?: ResetReason }> {
  let sent = 0;
  let reset: ResetReason | undefined;
  for (const p of parts) {
    if (comparePositions(since[p], upTo[p]) >= 0) continue;
    const st = await log.state(p);
    if (comparePositions(since[p], st.gapBefore) < 0) reset = "retention";
    for await (const e of entriesAfter(log, p, since[p])) {
      // Past the moment the names were added: the stream has these live; next partition.
      if (comparePositions(e.pos, upTo[p]) > 0) break;
      const hit = matches(e.channel);
      if (hit === undefined) continue;
      if (sent >= limit) return { sent, reset: "limit" };
      c.sendHistory(hit === true ? e : { ...e, pattern: hit });
      sent++;
      if (c.conn.held() > PAUSE_BYTES) await c.conn.drained();
      if (c.conn.closed) return { sent, reset };
    }
  }
  return { sent, reset };
}

/** The partitions that can hold these names' messages (all of them for any pattern). */
export function partitionsOf(channels: readonly string[], patterns: readonly string[], partitions: number): number[] {
  if (patterns.length > 0) return Array.from({ length: partitions }, (_, i) => i);
  return [...new Set(channels.map((ch) => partitionOf(ch, partitions)))].sort((a, b) => a - b);
}
