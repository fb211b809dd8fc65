import { randomFillSync } from "node:crypto";

/**
 * Unguessable tokens from a pool of CSPRNG bytes, each byte used once. A `randomBytes` call
 * costs a trip into OpenSSL (and a `getpid` for its fork check) every time: per new stream
 * (its secret) and per settle (its marker token) that measured as ~9% of the relay's connect
 * CPU. Refilling 4 KB at once costs about as much as two small calls. `randomUUID` pools the
 * same way inside Node.
 */
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let used = POOL_BYTES;

/** `bytes` random bytes as base64url text (at most the pool's size). */
export function randomToken(bytes: number): string {
  if (used + bytes > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  const token = pool.toString("base64url", used, used + bytes);
  // Spent bytes do not stay readable in the pool.
  pool.fill(0, used, used + bytes);
  used += bytes;
  return token;
}
