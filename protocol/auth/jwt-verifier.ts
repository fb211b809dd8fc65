import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTVerifyGetKey } from "jose";
import { FanoutError } from "../errors.js";
import { parseGrants, type Grants } from "./grants.js";

export interface JwtVerifierOptions {
  /** `FANOUT_JWT_SECRET`: verifies HS256 tokens, and nothing else. */
  secret?: string;
  /** `FANOUT_JWKS_URL`: verifies RS256, ES256 and EdDSA tokens with keys fetched (and cached) from here. */
  jwksUrl?: string;
  /** A key source in place of `jwksUrl` (jose `createLocalJWKSet`, a custom fetcher). */
  jwks?: JWTVerifyGetKey;
  /** `FANOUT_JWT_ISSUER`: when set, `iss` must equal it. */
  issuer?: string;
  /** `FANOUT_JWT_AUDIENCE`: when set, `aud` must contain it. */
  audience?: string;
  /** Allowed clock skew for `exp` and `nbf`, seconds (`FANOUT_JWT_CLOCK_SKEW`, default 5). */
  clockToleranceSeconds?: number;
}

export interface VerifiedToken {
  grants: Grants;
  /** The `sub` claim, when present (a rate-limit key, never logged with the token). */
  subject?: string;
  /** `exp` in seconds since the epoch, when present. */
  expiresAt?: number;
  /** The `info` claim (shown to others on presence channels), when it is an object of at most MAX_INFO_BYTES as JSON. */
  info?: Record<string, unknown>;
}

/** Larger `info` claims are ignored: presence lists carry them for every member. */
export const MAX_INFO_BYTES = 1024;

function presenceInfo(v: unknown): Record<string, unknown> | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  return new TextEncoder().encode(JSON.stringify(v)).byteLength <= MAX_INFO_BYTES ? (v as Record<string, unknown>) : undefined;
}

/** Longer tokens are refused before any parsing: bounds the work an anonymous request causes. */
export const MAX_TOKEN_LENGTH = 8192;

/**
 * Each key type verifies only its own algorithms, so a token cannot pick how it is checked:
 * an HS256 token signed with an RSA public key (the classic confusion) never reaches the
 * JWKS, an RS256 token never reaches the shared secret, and `alg: none` reaches neither.
 */
const SECRET_ALGS = ["HS256"];
const JWKS_ALGS = ["RS256", "ES256", "EdDSA", "Ed25519"];

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Whether a bearer value has the shape of a compact JWS (static keys normally do not). */
export function looksLikeJwt(token: string): boolean {
  return token.length <= MAX_TOKEN_LENGTH && JWT_SHAPE.test(token);
}

/**
 * A subscriber's token must say when it ends (`FANOUT_JWT_REQUIRE_EXP`, on by default): a
 * token without `exp` is valid forever, so a leaked one (in a URL, a log, a cookie jar)
 * could never be retired short of rotating the key, and nothing minted from it (a ticket)
 * could be bounded by it.
 */
export function checkSubscriberExpiry(token: Pick<VerifiedToken, "expiresAt">, required: boolean): void {
  if (required && token.expiresAt === undefined) {
    throw new FanoutError(401, "token_missing_exp", "subscriber tokens must carry an exp claim (FANOUT_JWT_REQUIRE_EXP)", {
      "WWW-Authenticate": 'Bearer realm="fanout", error="invalid_token"',
    });
  }
}

const invalid = (message: string) => new FanoutError(401, "invalid_token", message, { "WWW-Authenticate": 'Bearer realm="fanout", error="invalid_token"' });

/**
 * Verifies fanout JWTs with jose on Web Crypto only, so the same module runs in the relay
 * (Node) and in the edge functions (Workers). Failures are FanoutErrors: 401 for anything
 * wrong with the token, 503 when the JWKS cannot be fetched. Messages never quote the token.
 */
export class JwtVerifier {
  private readonly secret?: Uint8Array;
  private readonly jwks?: JWTVerifyGetKey;
  private readonly tolerance: number;

  constructor(private readonly opts: JwtVerifierOptions) {
    if (opts.secret) this.secret = new TextEncoder().encode(opts.secret);
    this.jwks = opts.jwks ?? (opts.jwksUrl ? createRemoteJWKSet(new URL(opts.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 }) : undefined);
    this.tolerance = opts.clockToleranceSeconds ?? 5;
  }

  /** Whether any key is configured; without one, no token can be verified. */
  get configured(): boolean {
    return this.secret !== undefined || this.jwks !== undefined;
  }

  async verify(token: string): Promise<VerifiedToken> {
    if (!looksLikeJwt(token)) throw invalid("the token is not a well-formed JWT");
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw invalid("the token header cannot be read");
    }
    const options = { issuer: this.opts.issuer, audience: this.opts.audience, clockTolerance: this.tolerance };
    let remote = false;
    try {
      let payload;
      if (typeof alg === "string" && SECRET_ALGS.includes(alg) && this.secret) {
        ({ payload } = await jwtVerify(token, this.secret, { ...options, algorithms: SECRET_ALGS }));
      } else if (typeof alg === "string" && JWKS_ALGS.includes(alg) && this.jwks) {
        remote = true;
        ({ payload } = await jwtVerify(token, this.jwks, { ...options, algorithms: JWKS_ALGS }));
      } else {
        throw invalid(`tokens signed with alg ${JSON.stringify(String(alg).slice(0, 20))} are not accepted here`);
      }
      return {
        grants: parseGrants(payload.fanout),
        subject: typeof payload.sub === "string" ? payload.sub : undefined,
        expiresAt: typeof payload.exp === "number" ? payload.exp : undefined,
        info: presenceInfo(payload.info),
      };
    } catch (err) {
      throw toFanoutError(err, remote);
    }
  }
}

function toFanoutError(err: unknown, remote: boolean): FanoutError {
  if (err instanceof FanoutError) return err;
  if (err instanceof errors.JWTExpired) {
    return new FanoutError(401, "token_expired", "the token has expired", { "WWW-Authenticate": 'Bearer realm="fanout", error="invalid_token"' });
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "nbf") return new FanoutError(401, "token_not_yet_valid", "the token is not valid yet (nbf)");
    return invalid(`the token's ${err.claim} claim is not accepted (${err.reason})`);
  }
  if (remote && (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || !(err instanceof errors.JOSEError))) {
    // The key set could not be fetched or read: our side, not the caller's token.
    return new FanoutError(503, "auth_unavailable", "the signing keys cannot be fetched right now", { "Retry-After": "5" });
  }
  if (err instanceof errors.JWKSNoMatchingKey) return invalid("no known key matches the token's kid/alg");
  if (err instanceof errors.JWSSignatureVerificationFailed) return invalid("the token signature does not verify");
  return invalid("the token is invalid");
}
