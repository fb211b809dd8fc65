/**
 * A position in one log partition: the Redis Stream entry id `<ms>-<seq>`. The memory broker
 * uses the same shape, so ids and cursors mean the same on both brokers.
 */
export interface Position {
  ms: number;
  seq: number;
}

export const ZERO: Position = Object.freeze({ ms: 0, seq: 0 });

export function comparePositions(a: Position, b: Position): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.seq - b.seq;
}

export function streamId(p: Position): string {
  return `${p.ms}-${p.seq}`;
}

const STREAM_ID = /^(\d{1,15})-(\d{1,15})$/;

export function parseStreamId(s: string): Position | undefined {
  const m = STREAM_ID.exec(s);
  return m ? { ms: Number(m[1]), seq: Number(m[2]) } : undefined;
}

/**
 * A message id is `<partition>-<ms>-<seq>`: where the message sits in the log. Publishers
 * get it back from POST /v1/publish and subscribers see it as the envelope's `id`.
 */
export interface MessageId {
  partition: number;
  pos: Position;
}

const MESSAGE_ID = /^(\d{1,4})-(\d{1,15})-(\d{1,15})$/;

export function formatMessageId(partition: number, pos: Position): string {
  return `${partition}-${pos.ms}-${pos.seq}`;
}

export function parseMessageId(s: string): MessageId | undefined {
  const m = MESSAGE_ID.exec(s);
  return m ? { partition: Number(m[1]), pos: { ms: Number(m[2]), seq: Number(m[3]) } } : undefined;
}
