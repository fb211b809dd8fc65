import { SignJWT } from "jose";
import type { Grants } from "./grants.js";

export interface SignTokenOptions {
  /** Lifetime in seconds (default 3600); `exp` is always set. */
  expiresIn?: number;
  subject?: string;
  issuer?: string;
  audience?: string;
  /** The `info` claim: what presence shows of this user to others (at most 1 KiB as JSON, or it is ignored). */
  info?: Record<string, unknown>;
}

/**
 * Mints an HS256 token for `FANOUT_JWT_SECRET` carrying `{ fanout: { subscribe, publish } }`
 * (and `admin: true` when asked), for a backend that hands tokens to its browsers (or
 * tests). Runtime-neutral.
 */
export async function signFanoutToken(secret: string, grants: Partial<Grants>, opts: SignTokenOptions = {}): Promise<string> {
  const claim: Record<string, unknown> = { subscribe: grants.subscribe ?? [], publish: grants.publish ?? [] };
  if (grants.admin) claim.admin = true;
  const jwt = new SignJWT({ fanout: claim, ...(opts.info ? { info: opts.info } : {}) })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (opts.expiresIn ?? 3600));
  if (opts.subject) jwt.setSubject(opts.subject);
  if (opts.issuer) jwt.setIssuer(opts.issuer);
  if (opts.audience) jwt.setAudience(opts.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
