import type { ConnectionStatus } from "./fanout-client.js";
import type { Envelope, ResetInfo } from "./envelope.js";
import { FanoutClientError } from "./errors.js";

export interface NameSet {
  channels: string[];
  patterns: string[];
}

export interface WireError {
  code: string;
  message: string;
  status: number;
}

/** The group's messages on its BroadcastChannel. `from` is the sending member's id. */
export type Wire =
  | { t: "hello"; from: string; channels: string[]; patterns: string[]; live: boolean }
  | { t: "want"; from: string; request: string; channels: string[]; patterns: string[]; since?: string }
  | { t: "bye"; from: string }
  | { t: "leader"; from: string }
  | { t: "event"; from: string; envelope: Envelope; type: string; data: string; id: string }
  | { t: "status"; from: string; status: ConnectionStatus }
  | { t: "ready"; from: string; connection: string; channels: string[]; patterns: string[]; id: string }
  | { t: "reset"; from: string; info: ResetInfo; id: string }
  | { t: "ack"; from: string; to: string; request: string; connection?: string; id: string }
  | { t: "nack"; from: string; to: string; request: string; error: WireError }
  | { t: "error"; from: string; error: WireError; fatal: boolean };

const isString = (x: unknown): x is string => typeof x === "string";
const isStrings = (x: unknown): boolean => Array.isArray(x) && x.every(isString);
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null;
const isError = (x: unknown): boolean => isObject(x) && isString(x.code) && isString(x.message) && typeof x.status === "number";

/** The fields each message type must have (beyond `t` and `from`), and their checks. */
const SHAPES: Record<Wire["t"], Record<string, (x: unknown) => boolean>> = {
  hello: { channels: isStrings, patterns: isStrings, live: (x) => typeof x === "boolean" },
  want: { request: isString, channels: isStrings, patterns: isStrings, since: (x) => x === undefined || isString(x) },
  bye: {},
  leader: {},
  event: { envelope: (x) => isObject(x) && isString(x.id) && isString(x.channel), type: isString, data: isString, id: isString },
  status: { status: isString },
  ready: { connection: isString, channels: isStrings, patterns: isStrings, id: isString },
  reset: { info: isObject, id: isString },
  ack: { to: isString, request: isString, connection: (x) => x === undefined || isString(x), id: isString },
  nack: { to: isString, request: isString, error: isError },
  error: { error: isError, fatal: (x) => typeof x === "boolean" },
};

/**
 * Is this a message of the group's wire? Anything on the BroadcastChannel is another tab's
 * (any script of the origin, or another SDK version): a malformed one is dropped, not thrown
 * on in the handler nor kept in the members' names.
 */
export function isWire(x: unknown): x is Wire {
  if (!isObject(x) || !isString(x.t) || !isString(x.from) || !Object.hasOwn(SHAPES, x.t)) return false;
  const shape = SHAPES[x.t as Wire["t"]];
  for (const k in shape) if (!shape[k](x[k])) return false;
  return true;
}

/** A tab's join is acked with this request id (its first names, or its names after a takeover). */
export const JOIN = "join";

export function randomId(): string {
  return Math.random().toString(36).slice(2, 10) + Date.now().toString(36).slice(-4);
}

export function wireError(err: unknown): WireError {
  const e = err instanceof FanoutClientError ? err : new FanoutClientError("network_error", (err as Error)?.message ?? String(err));
  return { code: e.code, message: e.message, status: e.status };
}

export function fromWire(e: WireError): FanoutClientError {
  return new FanoutClientError(e.code, e.message, { status: e.status });
}

/** The stream's names include all of `want`'s. */
export function covers(stream: NameSet, want: NameSet): boolean {
  return want.channels.every((c) => stream.channels.includes(c)) && want.patterns.every((p) => stream.patterns.includes(p));
}
