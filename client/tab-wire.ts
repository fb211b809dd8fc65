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
