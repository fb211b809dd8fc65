import { FanoutError } from "../errors.js";
import { checkChannel } from "../names.js";
import { checkPatternCosts, type PatternCostLimits } from "../pattern-cost.js";
import { checkChannels, checkPatterns } from "./grants.js";
import type { TicketStore } from "./ticket-store.js";

/** The channels and patterns a ticket opens, exactly as listed when it was issued. */
export interface TicketScope {
  channels: string[];
  patterns: string[];
}

/** What bounds a ticket besides its own lifetime: the credential that minted it. */
export interface TicketLimit {
  /** The minting token's `exp`, ms since the epoch: a ticket never outlives its token. */
  notAfterMs?: number;
}

export interface TicketOptions {
  /** Lifetime when the request names none, seconds (`FANOUT_TICKET_TTL`, default 30). */
  defaultTtlSeconds: number;
  /** Longest lifetime a request may ask for, seconds. */
  maxTtlSeconds: number;
  /** Most channels + patterns on one ticket (the per-connection subscription limit). */
  maxSubscriptions: number;
  /** The per-connection pattern limits: a ticket's patterns become a connection's, and its scope check matches against them. */
  patternLimits: PatternCostLimits;
}

const PREFIX = "fto_";
const TICKET_SHAPE = /^fto_[A-Za-z0-9_-]{43}$/;

function base64url(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The store key: a digest, so a dump of the store holds no usable ticket. */
async function storeKey(ticket: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(ticket)));
  return base64url(digest);
}

const invalidTicket = () => new FanoutError(401, "invalid_ticket", "the ticket is unknown, expired or already used");

const isNames = (x: unknown): x is string[] => Array.isArray(x) && x.every((n) => typeof n === "string");

/**
 * A stored ticket, or undefined when the value is not one: the store is shared Redis, and
 * a value another program wrote under a ticket key must read as no ticket, not as a 500.
 */
function readStored(raw: string): { c: string[]; p: string[]; e: number; n?: number } | undefined {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const o = v as Record<string, unknown> | null;
  return o !== null && typeof o === "object" && isNames(o.c) && isNames(o.p) && typeof o.e === "number" && (o.n === undefined || typeof o.n === "number") ? (o as { c: string[]; p: string[]; e: number; n?: number }) : undefined;
}

/** A literal glob for a channel name: Redis glob metacharacters escaped. */
function literalGlob(channel: string): string {
  return channel.replace(/[*?[\]\\]/g, "\\$&");
}

/**
 * Short-lived, single-use subscribe tickets: an opaque random value (256 bits) that stands
 * for one scope, so a long-lived JWT never has to sit in an EventSource URL (and so in
 * proxy logs and browser history). Runtime-neutral: Web Crypto only.
 */
export class Tickets {
  constructor(
    private readonly store: TicketStore,
    private readonly opts: TicketOptions,
  ) {}

  /** Reads and validates a `{ channels, patterns, ttl? }` request body into a scope and lifetime. */
  parseRequest(body: unknown): { scope: TicketScope; ttlSeconds: number } {
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      throw new FanoutError(400, "invalid_body", "the body must be a JSON object { channels, patterns, ttl }");
    }
    const b = body as Record<string, unknown>;
    const list = (v: unknown, field: string): string[] => {
      if (v === undefined || v === null) return [];
      if (!Array.isArray(v)) throw new FanoutError(400, "invalid_body", `${field} must be a list of names`);
      return [...new Set(v.map((x, i) => checkChannel(x, `${field}[${i}]`)))];
    };
    const channels = list(b.channels, "channels");
    const patterns = list(b.patterns, "patterns");
    if (channels.length + patterns.length === 0) throw new FanoutError(400, "no_subscriptions", "a ticket needs at least one channel or pattern");
    if (channels.length + patterns.length > this.opts.maxSubscriptions) {
      throw new FanoutError(400, "too_many_subscriptions", `at most ${this.opts.maxSubscriptions} channels and patterns per ticket`);
    }
    checkPatternCosts(patterns, this.opts.patternLimits);
    let ttlSeconds = this.opts.defaultTtlSeconds;
    if (b.ttl !== undefined && b.ttl !== null) {
      if (typeof b.ttl !== "number" || !Number.isInteger(b.ttl) || b.ttl < 1 || b.ttl > this.opts.maxTtlSeconds) {
        throw new FanoutError(400, "invalid_ttl", `ttl must be a whole number of seconds from 1 to ${this.opts.maxTtlSeconds}`);
      }
      ttlSeconds = b.ttl;
    }
    return { scope: { channels, patterns }, ttlSeconds };
  }

  /**
   * Mints a ticket for `scope` that expires after `ttlSeconds`, or when the minting token
   * does (`limit.notAfterMs`), whichever comes first. `expiresIn` is whole seconds, rounded
   * down, so a client that trusts it never presents an expired ticket.
   */
  async issue(scope: TicketScope, ttlSeconds: number, limit: TicketLimit = {}): Promise<{ ticket: string; expiresIn: number }> {
    const now = Date.now();
    const expires = Math.min(now + ttlSeconds * 1000, limit.notAfterMs ?? Infinity);
    // A token inside its clock-skew grace (or with under a second left) cannot vouch for more.
    if (expires - now < 1000) {
      throw new FanoutError(401, "token_expired", "the token expires in under a second; a ticket cannot outlive it", {
        "WWW-Authenticate": 'Bearer realm="fanout", error="invalid_token"',
      });
    }
    const ticket = PREFIX + base64url(crypto.getRandomValues(new Uint8Array(32)));
    // `n`: the minting token's end, which bounds the stream the ticket opens (not only its redemption).
    const value = JSON.stringify({ c: scope.channels, p: scope.patterns, e: expires, n: limit.notAfterMs });
    await this.store.put(await storeKey(ticket), value, expires - now);
    return { ticket, expiresIn: Math.floor((expires - now) / 1000) };
  }

  /** Uses the ticket up (whatever happens next) and returns its scope and its token's limit; 401 when it is not valid. */
  async redeem(ticket: string): Promise<TicketScope & TicketLimit> {
    if (!TICKET_SHAPE.test(ticket)) throw invalidTicket();
    const raw = await this.store.take(await storeKey(ticket));
    if (raw === undefined) throw invalidTicket();
    const v = readStored(raw);
    if (v === undefined || v.e <= Date.now()) throw invalidTicket();
    return v.n === undefined ? { channels: v.c, patterns: v.p } : { channels: v.c, patterns: v.p, notAfterMs: v.n };
  }
}

/** The request must stay inside the ticket: listed channels, or channels and patterns its patterns cover. */
export function checkTicketScope(scope: TicketScope, channels: string[], patterns: string[]): void {
  // A listed channel is in scope as it is; only the others need matching against the patterns.
  const listed = new Set(scope.channels);
  checkChannels(channels.filter((ch) => !listed.has(ch)), scope.patterns, "subscribe to");
  checkPatterns(patterns, [...scope.channels.map(literalGlob), ...scope.patterns]);
}
