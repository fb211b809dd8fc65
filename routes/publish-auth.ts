import type { Context } from "hono";
import { FanoutError } from "../protocol/errors.js";
import type { PublishMessage } from "../protocol/publish-request.js";
import { secretsEqual } from "./constant-time.js";

export interface PublishAuthOptions {
  /** Static publisher keys (`FANOUT_PUBLISH_KEYS`), sent as `Authorization: Bearer <key>`. */
  keys: readonly string[];
  /** `FANOUT_JWT_SECRET`: counts as configured auth (JWT publish globs are checked by a later pass). */
  jwtSecret?: string;
  /** With nothing configured, accept anyone (`FANOUT_ALLOW_ANONYMOUS_PUBLISH=true`). */
  allowAnonymous?: boolean;
  /**
   * With nothing configured, accept this request anyway when it comes from loopback. The
   * relay passes its socket check; the edge has no loopback and leaves it unset.
   */
  isLoopback?(c: Context): boolean;
}

function bearer(c: Context): string | undefined {
  const h = c.req.header("authorization");
  if (!h) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
  return m ? m[1] : "";
}

const challenge = { "WWW-Authenticate": 'Bearer realm="fanout"' };

/**
 * May this request publish these messages? Throws 401 otherwise. Shared by the edge
 * functions and the relay; `messages` is what a per-channel check (JWT `publish` globs,
 * 403) will look at. Every configured key is compared, in constant time, whatever matches.
 */
export async function authorizePublish(c: Context, messages: readonly PublishMessage[], opts: PublishAuthOptions): Promise<void> {
  void messages;
  const configured = opts.keys.length > 0 || opts.jwtSecret !== undefined;
  if (!configured) {
    if (opts.allowAnonymous || opts.isLoopback?.(c)) return;
    throw new FanoutError(
      401,
      "publish_not_configured",
      "no publisher keys are configured: set FANOUT_PUBLISH_KEYS (or FANOUT_ALLOW_ANONYMOUS_PUBLISH=true for open publishing)",
      challenge,
    );
  }
  const token = bearer(c);
  if (token === undefined) throw new FanoutError(401, "missing_credentials", "Authorization: Bearer <publisher key> is required", challenge);
  if (token === "") throw new FanoutError(401, "invalid_credentials", "Authorization must be Bearer <publisher key>", challenge);
  const matches = await Promise.all(opts.keys.map((k) => secretsEqual(token, k)));
  if (!matches.includes(true)) throw new FanoutError(401, "invalid_credentials", "unknown publisher key", challenge);
}
