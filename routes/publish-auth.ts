import type { Context } from "hono";
import { FanoutError } from "../protocol/errors.js";
import type { PublishMessage } from "../protocol/publish-request.js";
import { checkChannels, checkPatterns } from "../protocol/auth/grants.js";
import type { TicketLimit, TicketScope } from "../protocol/auth/tickets.js";
import { checkSubscriberExpiry, looksLikeJwt, type JwtVerifier } from "../protocol/auth/jwt-verifier.js";
import { sha256, timingSafeEqual, toHex, utf8 } from "./constant-time.js";

export interface PublishAuthOptions {
  /** Static publisher keys (`FANOUT_PUBLISH_KEYS`), sent as `Authorization: Bearer <key>`: may publish anywhere. */
  keys: readonly string[];
  /** JWTs whose `fanout.publish` globs say where they may publish. */
  verifier?: JwtVerifier;
  /** With nothing configured, accept anyone (`FANOUT_ALLOW_ANONYMOUS_PUBLISH=true`, edge only). */
  allowAnonymous?: boolean;
  /**
   * With nothing configured, accept this request anyway when it comes from loopback. The
   * relay passes its client-address check (the peer, and behind a trusted proxy the client it
   * forwards, must both be loopback); the edge has no loopback and leaves it unset.
   */
  isLoopback?(c: Context): boolean;
  /** `FANOUT_JWT_REQUIRE_EXP`: a JWT that mints a subscribe ticket must carry `exp`. */
  requireSubscriberExp?: boolean;
}

/** Who is publishing: a static key, a verified JWT, or nobody (allowed only when nothing is configured). */
export type PublishCaller =
  | { kind: "key"; rateKey: string }
  | { kind: "jwt"; rateKey: string; publish: readonly string[]; subscribe: readonly string[]; expiresAt?: number }
  | { kind: "anonymous" };

const challenge = { "WWW-Authenticate": 'Bearer realm="fanout"' };

export function unauthorized(message: string): FanoutError {
  return new FanoutError(401, "unauthorized", message, challenge);
}

/** `Authorization: Bearer <x>`: undefined without the header, 401 when it is not a Bearer credential. */
export function bearer(c: Context): string | undefined {
  const h = c.req.header("authorization");
  if (h === undefined) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
  if (!m) throw unauthorized("Authorization must be Bearer <key or token>");
  return m[1];
}

/** Digests of each configured key list, computed once (the list is fixed per process or isolate). */
const keyDigests = new WeakMap<readonly string[], Promise<Uint8Array[]>>();

/**
 * Which configured key `token` is (-1: none). Digests are compared, every one of them, in
 * constant time: neither the position of a difference nor a key's length leaks.
 */
export async function matchKey(token: string, keys: readonly string[]): Promise<number> {
  if (keys.length === 0) return -1;
  let digests = keyDigests.get(keys);
  if (!digests) {
    digests = Promise.all(keys.map((k) => sha256(utf8(k))));
    keyDigests.set(keys, digests);
  }
  const [given, known] = await Promise.all([sha256(utf8(token)), digests]);
  let found = -1;
  known.forEach((d, i) => {
    if (timingSafeEqual(given, d) && found < 0) found = i;
  });
  return found;
}

/**
 * Identifies the caller from `token`. Every configured key is compared in constant time,
 * whichever matches; a JWT is verified with the algorithms pinned to the configured key.
 */
export async function identifyPublisher(c: Context, token: string | undefined, opts: PublishAuthOptions): Promise<PublishCaller> {
  const configured = opts.keys.length > 0 || opts.verifier?.configured === true;
  if (token === undefined) {
    if (!configured && (opts.allowAnonymous || opts.isLoopback?.(c))) return { kind: "anonymous" };
    if (!configured) {
      throw unauthorized(
        opts.isLoopback
          ? "publishing needs a key (FANOUT_PUBLISH_KEYS is not set: loopback only)"
          : "no publisher keys are configured: set FANOUT_PUBLISH_KEYS (or FANOUT_ALLOW_ANONYMOUS_PUBLISH=true for open publishing)",
      );
    }
    throw unauthorized("missing Authorization: Bearer <key or token>");
  }
  const index = await matchKey(token, opts.keys);
  if (index >= 0) return { kind: "key", rateKey: `key:${index}` };
  if (opts.verifier?.configured && looksLikeJwt(token)) {
    const t = await opts.verifier.verify(token);
    // A token without `sub` is limited on its own digest (never on the token text).
    const rateKey = t.subject !== undefined ? `sub:${t.subject}` : `jwt:${toHex(await sha256(utf8(token)))}`;
    return { kind: "jwt", rateKey, publish: t.grants.publish, subscribe: t.grants.subscribe, expiresAt: t.expiresAt };
  }
  throw unauthorized("unknown publisher key");
}

const callers = new WeakMap<Context, Promise<PublishCaller>>();

/**
 * Who is calling, decided once per request. Routes call it before reading a body, so an
 * anonymous sender cannot make the server buffer anything (401 first); the channel checks
 * after parsing reuse the answer instead of verifying a JWT twice.
 */
export function authenticatePublisher(c: Context, token: string | undefined, opts: PublishAuthOptions): Promise<PublishCaller> {
  let caller = callers.get(c);
  if (!caller) {
    caller = identifyPublisher(c, token, opts);
    callers.set(c, caller);
  }
  return caller;
}

/**
 * May this request publish these messages? 401 without a valid credential, 403 when a JWT's
 * `publish` globs miss any channel (a batch is refused whole). Shared by the edge functions
 * and the relay.
 */
export async function authorizePublish(c: Context, messages: readonly PublishMessage[], opts: PublishAuthOptions): Promise<PublishCaller> {
  const caller = await authenticatePublisher(c, bearer(c), opts);
  if (caller.kind === "jwt") checkChannels(new Set(messages.map((m) => m.channel)), caller.publish, "publish to");
  return caller;
}

/**
 * May the holder of `token` mint a subscribe ticket for `scope`? A publisher key may for
 * anything; a JWT for what it could subscribe to itself (its `subscribe` globs plus the
 * public channels), and only if it carries `exp` (unless `requireSubscriberExp` is off), which
 * the caller passes on as the ticket's limit; nobody else, unless nothing is configured
 * (loopback / anonymous rules).
 */
export async function authorizeTicket(c: Context, token: string | undefined, scope: TicketScope, opts: PublishAuthOptions, publicChannels: readonly string[]): Promise<PublishCaller> {
  const caller = await authenticatePublisher(c, token, opts);
  if (caller.kind === "jwt") {
    // Publishing is a server's job and service tokens may be long-lived; subscribing is not.
    checkSubscriberExpiry(caller, opts.requireSubscriberExp ?? true);
    const allowed = [...caller.subscribe, ...publicChannels];
    checkChannels(scope.channels, allowed, "subscribe to");
    checkPatterns(scope.patterns, allowed);
  }
  return caller;
}

/** A ticket minted by this caller ends when its token does; keys and anonymous callers have no end. */
export function ticketLimit(caller: PublishCaller): TicketLimit {
  return caller.kind === "jwt" && caller.expiresAt !== undefined ? { notAfterMs: caller.expiresAt * 1000 } : {};
}
