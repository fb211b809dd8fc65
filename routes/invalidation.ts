import { FanoutError } from "../protocol/errors.js";
import { checkChannel, isWellFormed } from "../protocol/names.js";
import type { PublishMessage } from "../protocol/publish-request.js";
import type { Publisher } from "../protocol/publisher.js";
import type { InvalidationStore } from "./invalidation-store.js";

/** What `POST /v1/invalidate` (and each deployment hook) asks for, validated. */
export interface Invalidation {
  scope: string;
  keys: string[];
  tags: string[];
  paths: string[];
  /** Build or deployment id, when a hook knows it. */
  deployId?: string;
}

export interface InvalidationOutcome {
  id: string;
  receivers: number;
  deleted: number;
  duplicate: boolean;
}

/** Keys, tags and paths together, per request: bounds the work one request can cause. */
export const MAX_INVALIDATION_ITEMS = 1000;
const MAX_ITEM_CHARS = 4096;
const CONTROL = /[\u0000-\u001f\u007f]/;

function strings(v: unknown, field: string, allowControl: boolean): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new FanoutError(400, `invalid_${field}`, `${field} must be an array of strings`);
  for (const [i, s] of v.entries()) {
    if (typeof s !== "string" || s.length === 0 || s.length > MAX_ITEM_CHARS) {
      throw new FanoutError(400, `invalid_${field}`, `${field}[${i}] must be a string of 1–${MAX_ITEM_CHARS} characters`);
    }
    if (!allowControl && CONTROL.test(s)) {
      throw new FanoutError(400, `invalid_${field}`, `${field}[${i}] must not contain control characters`);
    }
    // Keys and tags name Redis keys: a lone surrogate would reach Redis as U+FFFD and name another key.
    if (!isWellFormed(s)) {
      throw new FanoutError(400, `invalid_${field}`, `${field}[${i}] is not valid UTF-8 (lone surrogate)`);
    }
  }
  return [...new Set(v as string[])];
}

export function invalidationChannel(scope: string): string {
  return `invalidate:${scope}`;
}

/**
 * Validates an invalidation body `{ keys?, tags?, paths?, scope?, deployId? }`. Cache keys
 * may hold any characters, as Redis keys do; tags, paths and scope go out in the broadcast
 * and must be free of control characters.
 */
export function parseInvalidation(body: unknown): Invalidation {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new FanoutError(400, "invalid_body", "body must be a JSON object");
  }
  const b = body as Record<string, unknown>;
  let scope = "default";
  if (b.scope !== undefined && b.scope !== null) {
    if (typeof b.scope !== "string" || b.scope.length === 0) throw new FanoutError(400, "invalid_scope", "scope must be a non-empty string");
    scope = b.scope;
  }
  checkChannel(invalidationChannel(scope), "scope");
  const inv: Invalidation = {
    scope,
    keys: strings(b.keys, "keys", true),
    tags: strings(b.tags, "tags", false),
    paths: strings(b.paths, "paths", false),
  };
  if (inv.keys.length + inv.tags.length + inv.paths.length > MAX_INVALIDATION_ITEMS) {
    throw new FanoutError(400, "too_many_items", `keys, tags and paths hold at most ${MAX_INVALIDATION_ITEMS} entries together`);
  }
  if (b.deployId !== undefined && b.deployId !== null) {
    if (typeof b.deployId !== "string" || b.deployId.length === 0 || b.deployId.length > 256 || CONTROL.test(b.deployId) || !isWellFormed(b.deployId)) {
      throw new FanoutError(400, "invalid_deploy_id", "deployId must be a string of 1–256 characters of valid UTF-8 without control characters");
    }
    inv.deployId = b.deployId;
  }
  return inv;
}

/** Where an invalidation came from, as told to subscribers. */
export interface InvalidationSource {
  source: string;
  event?: string;
  /** Idempotency id of the broadcast (a hook's delivery id). */
  idempotencyId?: string;
}

/**
 * The broadcast on `invalidate:<scope>`, type `invalidate`. Its data is
 * `{ scope, keys, tags, paths, deployId?, source, event? }`.
 */
export function invalidationMessage(inv: Invalidation, from: InvalidationSource): PublishMessage {
  const data: Record<string, unknown> = { scope: inv.scope, keys: inv.keys, tags: inv.tags, paths: inv.paths };
  if (inv.deployId !== undefined) data.deployId = inv.deployId;
  data.source = from.source;
  if (from.event !== undefined) data.event = from.event;
  const m: PublishMessage = { channel: invalidationChannel(inv.scope), type: "invalidate", data: JSON.stringify(data) };
  if (from.idempotencyId !== undefined) m.id = from.idempotencyId;
  return m;
}

/**
 * Deletes first, then broadcasts: a client that refetches on the broadcast never finds the
 * old entry still cached.
 */
export async function runInvalidation(
  deps: { store: InvalidationStore; publisher: Publisher },
  inv: Invalidation,
  from: InvalidationSource,
): Promise<InvalidationOutcome> {
  const tagged = inv.tags.length > 0 ? await deps.store.readTags(inv.tags) : [];
  const keys = [...new Set([...inv.keys, ...tagged])];
  const deleted = keys.length > 0 ? await deps.store.deleteKeys(keys, inv.tags) : 0;
  const [r] = await deps.publisher.publish([invalidationMessage(inv, from)]);
  return { id: r.id, receivers: r.receivers, deleted, duplicate: r.duplicate };
}
