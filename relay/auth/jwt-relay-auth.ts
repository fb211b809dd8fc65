import type { Context } from "hono";
import { FanoutError } from "../../protocol/errors.js";
import type { PublishMessage } from "../../protocol/publish-request.js";
import { checkChannels, checkPatterns } from "../../protocol/auth/grants.js";
import { channelAllowed, patternWithin } from "../../protocol/pattern-scope.js";
import { looksLikeJwt, type JwtVerifier } from "../../protocol/auth/jwt-verifier.js";
import { checkTicketScope, type TicketScope, type Tickets } from "../../protocol/auth/tickets.js";
import { secretsEqual, sha256, toHex, utf8 } from "../../routes/constant-time.js";
import type { RelayMetrics } from "../metrics.js";
import type { RelayAuth } from "./relay-auth.js";
import type { PublishRateLimiter } from "./publish-rate-limiter.js";
import { bearer, isLoopback, remoteAddress, subscriberToken, unauthorized } from "./credentials.js";

export interface JwtRelayAuthOptions {
  /** `FANOUT_PUBLISH_KEYS`: may publish anywhere, subscribe anywhere, and issue any ticket. */
  keys: readonly string[];
  verifier: JwtVerifier;
  /** `FANOUT_PUBLIC_CHANNELS`: globs anonymous subscribers may open (and every token holder too). */
  publicChannels: readonly string[];
  tickets: Tickets;
  rateLimiter: PublishRateLimiter;
  metrics: RelayMetrics;
}

/** Who is calling: a static key (no per-channel limits), a verified JWT, or the loopback default. */
type Caller = { kind: "key"; rateKey: string } | { kind: "jwt"; rateKey: string; publish: readonly string[]; subscribe: readonly string[] } | { kind: "local"; rateKey: string };

/**
 * The relay's auth: static publisher keys and JWTs (`fanout.publish` / `fanout.subscribe`
 * globs), subscribe tickets, public channels and the per-publisher rate limit.
 *
 * Defaults: with neither keys nor a JWT key configured, publishing is loopback-only; with no
 * JWT key configured, subscribing is open (or limited to `FANOUT_PUBLIC_CHANNELS` when set
 * for anonymous callers); with one, anonymous subscribers get the public channels only.
 * Every refusal is counted in `fanout_rejected_total` by code.
 */
export class JwtRelayAuth implements RelayAuth {
  constructor(private readonly opts: JwtRelayAuthOptions) {
    if (opts.keys.length === 0 && !opts.verifier.configured) {
      console.warn("[fanout] neither FANOUT_PUBLISH_KEYS nor FANOUT_JWT_SECRET/FANOUT_JWKS_URL is set: publishing is accepted from loopback clients only");
    }
  }

  authorizePublish(c: Context, messages: PublishMessage[]): Promise<void> {
    return this.counted(async () => {
      const caller = await this.publisher(c, bearer(c));
      if (caller.kind === "jwt") checkChannels(new Set(messages.map((m) => m.channel)), caller.publish, "publish to");
      this.charge(caller.rateKey, messages.length);
    });
  }

  authorizeSubscribe(c: Context, channels: string[], patterns: string[]): Promise<void> {
    return this.counted(async () => {
      const ticket = c.req.query("ticket");
      if (ticket !== undefined) {
        checkTicketScope(await this.opts.tickets.redeem(ticket), channels, patterns);
        return;
      }
      const token = subscriberToken(c);
      if (token !== undefined && (await this.isKey(token))) return;
      if (token !== undefined && this.opts.verifier.configured) {
        const { grants } = await this.opts.verifier.verify(token);
        const allowed = [...grants.subscribe, ...this.opts.publicChannels];
        checkChannels(channels, allowed, "subscribe to");
        checkPatterns(patterns, allowed);
        return;
      }
      // Anonymous (a token nobody can verify counts as none).
      if (this.opts.publicChannels.length > 0) {
        if (!channels.every((ch) => channelAllowed(ch, this.opts.publicChannels)) || !patterns.every((p) => patternWithin(p, this.opts.publicChannels))) {
          throw unauthorized("these channels need a token (only FANOUT_PUBLIC_CHANNELS are open)");
        }
        return;
      }
      if (this.opts.verifier.configured) throw unauthorized("subscribing needs a token (Authorization: Bearer, ?token=, the fanout_token cookie, or ?ticket=)");
    });
  }

  /**
   * May this caller mint a ticket for `scope`? A publisher key may for anything; a JWT for
   * what it could subscribe to itself; the loopback default when nothing is configured.
   */
  authorizeTicket(c: Context, scope: TicketScope): Promise<void> {
    return this.counted(async () => {
      const caller = await this.publisher(c, subscriberToken(c));
      if (caller.kind === "jwt") {
        const allowed = [...caller.subscribe, ...this.opts.publicChannels];
        checkChannels(scope.channels, allowed, "subscribe to");
        checkPatterns(scope.patterns, allowed);
      }
      this.charge(caller.rateKey, 1);
    });
  }

  private async publisher(c: Context, token: string | undefined): Promise<Caller> {
    const { keys, verifier } = this.opts;
    if (token === undefined) {
      const addr = remoteAddress(c);
      if (keys.length === 0 && !verifier.configured && isLoopback(addr)) return { kind: "local", rateKey: `ip:${addr}` };
      if (keys.length === 0 && !verifier.configured) throw unauthorized("publishing needs a key (FANOUT_PUBLISH_KEYS is not set: loopback only)");
      throw unauthorized("missing Authorization: Bearer <key or token>");
    }
    const index = await this.keyIndex(token);
    if (index >= 0) return { kind: "key", rateKey: `key:${index}` };
    if (verifier.configured && looksLikeJwt(token)) {
      const t = await verifier.verify(token);
      // A token without `sub` is limited on its own digest (never on the token text).
      const rateKey = t.subject !== undefined ? `sub:${t.subject}` : `jwt:${toHex(await sha256(utf8(token)))}`;
      return { kind: "jwt", rateKey, publish: t.grants.publish, subscribe: t.grants.subscribe };
    }
    throw unauthorized("unknown publisher key");
  }

  private async isKey(token: string): Promise<boolean> {
    return (await this.keyIndex(token)) >= 0;
  }

  /** Compares against every key in constant time, whichever matches. */
  private async keyIndex(token: string): Promise<number> {
    const matches = await Promise.all(this.opts.keys.map((k) => secretsEqual(token, k)));
    return matches.indexOf(true);
  }

  private charge(rateKey: string, cost: number): void {
    const wait = this.opts.rateLimiter.take(rateKey, cost);
    if (wait > 0) throw new FanoutError(429, "rate_limited", `publish rate limit reached; retry in ${wait} s`, { "Retry-After": String(wait) });
  }

  private async counted(f: () => Promise<void>): Promise<void> {
    try {
      await f();
    } catch (err) {
      throw err;
    }
  }
}
