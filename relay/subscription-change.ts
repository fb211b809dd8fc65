import { FanoutError } from "../protocol/errors.js";
import { checkChannel } from "../protocol/names.js";
import { checkSubscribable } from "../protocol/reserved-channels.js";
import { parseCursor, type Cursor } from "../protocol/cursor.js";

export interface NameSet {
  channels: string[];
  patterns: string[];
}

/**
 * One request to change an open stream's subscriptions (`POST /v1/connections/<id>/subscriptions`),
 * validated. Its JSON form is also what a relay forwards to the relay holding the stream.
 */
export interface SubscriptionChange {
  secret: string;
  /** Echoed in the `subscribed` ack, so a client can tell its requests' acks apart. */
  request: string;
  add: NameSet;
  remove: NameSet;
  /** Replay the added names' history after this cursor (default: none, from the moment of adding). */
  since?: string;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const MAX_SECRET = 128;

function invalid(message: string): FanoutError {
  return new FanoutError(400, "invalid_body", message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function readNames(v: unknown, field: string, max: number): NameSet {
  if (v === undefined) return { channels: [], patterns: [] };
  if (!isObject(v)) throw invalid(`${field} must be an object {"channels": [...], "patterns": [...]}`);
  for (const k of Object.keys(v)) if (k !== "channels" && k !== "patterns") throw invalid(`${field} has an unknown field ${JSON.stringify(k).slice(0, 40)}`);
  const list = (key: "channels" | "patterns"): string[] => {
    const x = v[key];
    if (x === undefined) return [];
    if (!Array.isArray(x) || !x.every((s) => typeof s === "string")) throw invalid(`${field}.${key} must be an array of strings`);
    // Bounded before any name is checked: the caller's limit is on the stream's whole set.
    if (x.length > max) throw new FanoutError(400, "too_many_subscriptions", `at most ${max} channels and patterns per connection`);
    const names = [...new Set(x as string[])];
    names.forEach((n) => checkChannel(n, key === "channels" ? "channel" : "pattern"));
    return names;
  };
  return { channels: list("channels"), patterns: list("patterns") };
}

/**
 * Validates a change request body: names as for `GET /v1/events` (size, characters, reserved
 * channels), the `since` cursor's form, the request id. 400 with a code otherwise. Whether the
 * caller may open the added names is the route's check (the same auth as a new stream).
 */
export function parseSubscriptionChange(body: unknown, opts: { maxSubscriptions: number; partitions: number; logPrefix: string }): SubscriptionChange & { sinceCursor?: Cursor } {
  if (!isObject(body)) throw invalid('the body must be a JSON object {"secret", "add", "remove", "since", "request"}');
  for (const k of Object.keys(body)) {
    if (!["secret", "add", "remove", "since", "request"].includes(k)) throw invalid(`unknown field ${JSON.stringify(k).slice(0, 40)}`);
  }
  const { secret, request, since } = body;
  if (typeof secret !== "string" || secret.length === 0 || secret.length > MAX_SECRET) {
    throw new FanoutError(403, "bad_connection_secret", "give the connection's secret (the `secret` of its ready event)");
  }
  if (request !== undefined && (typeof request !== "string" || !REQUEST_ID.test(request))) {
    throw invalid("request must be 1 to 64 characters of A-Z a-z 0-9 . _ : -");
  }
  const add = readNames(body.add, "add", opts.maxSubscriptions);
  const remove = readNames(body.remove, "remove", opts.maxSubscriptions);
  checkSubscribable(add.channels, add.patterns, opts.logPrefix);
  let sinceCursor: Cursor | undefined;
  if (since !== undefined) {
    if (typeof since !== "string") throw invalid("since must be a cursor (an event id of this stream)");
    const parsed = parseCursor(since, opts.partitions);
    if (!parsed.ok) throw new FanoutError(400, "invalid_cursor", `since is not a cursor of this deployment (${parsed.reason})`);
    sinceCursor = parsed.cursor;
  }
  return { secret, request: (request as string | undefined) ?? crypto.randomUUID(), add, remove, since: since as string | undefined, sinceCursor };
}
