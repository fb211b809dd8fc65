/**
 * Secret comparisons for keys and webhook signatures, on Web Crypto only (Workers and Node
 * both have it). Nothing here returns early on the first differing byte.
 */
const encoder = new TextEncoder();

export function utf8(s: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(s) as Uint8Array<ArrayBuffer>;
}

/** Equal length is not secret here (both sides are digests of a known size). */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export async function sha256(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}


export async function hmac(hash: "SHA-1" | "SHA-256", secret: string, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const key = await crypto.subtle.importKey("raw", utf8(secret), { name: "HMAC", hash }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, data));
}

export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Lower- or upper-case hex to bytes; undefined for anything that is not hex. */
export function fromHex(s: string): Uint8Array | undefined {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return undefined;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Whether `signatureHex` is the HMAC of `body` under `secret`. */
export async function hmacMatches(hash: "SHA-1" | "SHA-256", secret: string, body: Uint8Array<ArrayBuffer>, signatureHex: string): Promise<boolean> {
  const given = fromHex(signatureHex.trim());
  if (!given) return false;
  return timingSafeEqual(given, await hmac(hash, secret, body));
}
