import type { Context } from "hono";
import { FanoutError } from "../../protocol/errors.js";
import type { PublishMessage } from "../../protocol/publish-request.js";
import { checkChannels, checkPatterns } from "../../protocol/auth/grants.js";
import { ScopeBudget, channelAllowed, patternWithin } from "../../protocol/pattern-scope.js";
import { checkSubscriberExpiry, looksLikeJwt, type JwtVerifier } from "../../protocol/auth/jwt-verifier.js";
import { authenticatePublisher, authorizePublish, authorizeTicket, bearer, matchKey, ticketLimit, unauthorized, type PublishAuthOptions, type PublishCaller } from "../../routes/publish-auth.js";
import { checkTicketScope, type TicketLimit, type TicketScope, type Tickets } from "../../protocol/auth/tickets.js";
import type { OpsAccess, RelayAuth } from "./relay-auth.js";
import type { PresenceIdentity } from "../presence/presence-store.js";
import type { PublishRateLimiter } from "./publish-rate-limiter.js";
import { isLocalRequest, remoteAddress, subscriberToken } from "./credentials.js";
import type { TrustedProxies } from "./trusted-proxies.js";

export interface JwtRelayAuthOptions {
  /** `FANOUT_PUBLISH_KEYS`: may publish anywhere, subscribe anywhere, and issue any ticket. */
  keys: readonly string[];
  verifier: JwtVerifier;
  /** `FANOUT_PUBLIC_CHANNELS`: globs anonymous subscribers may open (and every token holder too). */
  publicChannels: readonly string[];
  tickets: Tickets;
  rateLimiter: PublishRateLimiter;
  /** `FANOUT_JWT_REQUIRE_EXP`: subscriber tokens (and tokens minting tickets) must carry `exp`. */
  requireExp: boolean;
  /** Whose `X-Forwarded-For` decides the client address (loopback rule, anonymous rate key). */
  trustedProxies: TrustedProxies;
}

/**
 * The relay's auth: static publisher keys and JWTs (`fanout.publish` / `fanout.subscribe`
 * globs), subscribe tickets, public channels and the per-publisher rate limit.
 *
 * Defaults: with neither keys nor a JWT key configured, publishing is loopback-only; with no
 * JWT key configured, subscribing is open (or limited to `FANOUT_PUBLIC_CHANNELS` when set
 * for anonymous callers); with one, anonymous subscribers get the public channels only.
 */
export class JwtRelayAuth implements RelayAuth {
  private readonly publishAuth: PublishAuthOptions;

  constructor(private readonly opts: JwtRelayAuthOptions) {
    this.publishAuth = { keys: opts.keys, verifier: opts.verifier, isLoopback: (c) => isLocalRequest(c, opts.trustedProxies), requireSubscriberExp: opts.requireExp };
    if (opts.keys.length === 0 && !opts.verifier.configured) {
      console.warn("[fanout] neither FANOUT_PUBLISH_KEYS nor FANOUT_JWT_SECRET/FANOUT_JWKS_URL is set: publishing is accepted from loopback clients only");
    }
  }

  async authenticatePublisher(c: Context): Promise<void> {
    await authenticatePublisher(c, bearer(c), this.publishAuth);
  }

  /** Before a ticket request's body: the caller must be one who may mint tickets at all. */
  async authenticateTicket(c: Context): Promise<void> {
    await authenticatePublisher(c, subscriberToken(c), this.publishAuth);
  }

  async authorizePublish(c: Context, messages: PublishMessage[]): Promise<void> {
    const caller = await authorizePublish(c, messages, this.publishAuth);
    this.charge(this.rateKey(c, caller), messages.length);
  }

  async authorizeSubscribe(c: Context, channels: string[], patterns: string[]): Promise<number | undefined> {
    const ticket = c.req.query("ticket");
    if (ticket !== undefined) {
      const redeemed = await this.opts.tickets.redeem(ticket);
      checkTicketScope(redeemed, channels, patterns);
      return redeemed.notAfterMs;
    }
    const token = subscriberToken(c);
    if (token !== undefined && (await matchKey(token, this.opts.keys)) >= 0) return undefined;
    if (token !== undefined && this.opts.verifier.configured) {
      const verified = await this.opts.verifier.verify(token);
      checkSubscriberExpiry(verified, this.opts.requireExp);
      const allowed = [...verified.grants.subscribe, ...this.opts.publicChannels];
      checkChannels(channels, allowed, "subscribe to");
      checkPatterns(patterns, allowed);
      return verified.expiresAt === undefined ? undefined : verified.expiresAt * 1000;
    }
    // Anonymous (a token nobody can verify counts as none).
    if (this.opts.publicChannels.length > 0) {
      const budget = new ScopeBudget();
      if (!channels.every((ch) => channelAllowed(ch, this.opts.publicChannels, budget)) || !patterns.every((p) => patternWithin(p, this.opts.publicChannels, budget))) {
        throw unauthorized("these channels need a token (only FANOUT_PUBLIC_CHANNELS are open)");
      }
      return undefined;
    }
    if (this.opts.verifier.configured) throw unauthorized("subscribing needs a token (Authorization: Bearer, ?token=, the fanout_token cookie, or ?ticket=)");
    return undefined;
  }

  async identify(c: Context): Promise<PresenceIdentity> {
    // A ticket carries no identity; a publisher key is a backend, not a user.
    if (c.req.query("ticket") !== undefined || !this.opts.verifier.configured) return { sub: "" };
    const token = subscriberToken(c);
    if (token === undefined || !looksLikeJwt(token)) return { sub: "" };
    try {
      const v = await this.opts.verifier.verify(token);
      return { sub: v.subject ?? "", ...(v.info ? { info: v.info } : {}) };
    } catch {
      return { sub: "" };
    }
  }

  /**
   * May this caller mint a ticket for `scope`? A publisher key may for anything; a JWT for
   * what it could subscribe to itself; the loopback default when nothing is configured.
   */
  async authorizeTicket(c: Context, scope: TicketScope): Promise<TicketLimit> {
    const caller = await authorizeTicket(c, subscriberToken(c), scope, this.publishAuth, this.opts.publicChannels);
    this.charge(this.rateKey(c, caller), 1);
    return ticketLimit(caller);
  }

  /**
   * Names are for operators: a publisher key, or a JWT with `fanout.admin: true`, sent as
   * `Authorization: Bearer` only (a cookie is an ambient credential a cross-site page could
   * ride on; a query token ends up in logs). With nothing configured everything is open
   * anyway, so names are too; with only public channels configured, loopback callers see
   * them, as only they may publish.
   */
  async authorizeOps(c: Context): Promise<OpsAccess> {
    const credentials = this.opts.keys.length > 0 || this.opts.verifier.configured;
    if (!credentials) {
      return this.opts.publicChannels.length === 0 || isLocalRequest(c, this.opts.trustedProxies) ? "names" : "totals";
    }
    const token = bearer(c);
    if (token === undefined) return "totals";
    if ((await matchKey(token, this.opts.keys)) >= 0) return "names";
    if (this.opts.verifier.configured && looksLikeJwt(token)) {
      const { grants } = await this.opts.verifier.verify(token);
      if (grants.admin) return "names";
      throw new FanoutError(403, "admin_required", "this token may not read channel names: it needs the claim fanout.admin = true");
    }
    throw unauthorized("unknown key or token");
  }

  /** Anonymous callers exist only on loopback with nothing configured: limited per address. */
  private rateKey(c: Context, caller: PublishCaller): string {
    return caller.kind === "anonymous" ? `ip:${remoteAddress(c, this.opts.trustedProxies)}` : caller.rateKey;
  }

  private charge(rateKey: string, cost: number): void {
    const wait = this.opts.rateLimiter.take(rateKey, cost);
    if (wait > 0) throw new FanoutError(429, "rate_limited", `publish rate limit reached; retry in ${wait} s`, { "Retry-After": String(wait) });
  }

}
