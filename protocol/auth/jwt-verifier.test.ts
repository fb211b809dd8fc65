import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey } from "jose";
import { FanoutError } from "../errors.js";
import { JwtVerifier } from "./jwt-verifier.js";
import { signFanoutToken } from "./sign-token.js";

const SECRET = "s3cret-for-tests-only-0123456789abcdef";
const enc = new TextEncoder();
const now = () => Math.floor(Date.now() / 1000);
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

async function refusal(p: Promise<unknown>): Promise<FanoutError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FanoutError);
  return err as FanoutError;
}

describe("JwtVerifier with FANOUT_JWT_SECRET (HS256)", () => {
  const v = new JwtVerifier({ secret: SECRET });

  it("accepts a valid token and reads its grants and subject", async () => {
    const t = await signFanoutToken(SECRET, { subscribe: ["user:42:*"], publish: ["chat:*"] }, { subject: "u42" });
    const r = await v.verify(t);
    expect(r.grants).toEqual({ subscribe: ["user:42:*"], publish: ["chat:*"], admin: false });
    expect(r.subject).toBe("u42");
    expect(r.expiresAt).toBeGreaterThan(now());
  });

  it("reads the info claim (presence) when it is an object of at most 1 KiB, and ignores it otherwise", async () => {
    const info = async (v: unknown) => (await new JwtVerifier({ secret: SECRET }).verify(await new SignJWT({ info: v }).setProtectedHeader({ alg: "HS256" }).sign(enc.encode(SECRET)))).info;
    expect(await info({ name: "Ann", avatar: "a.png" })).toEqual({ name: "Ann", avatar: "a.png" });
    expect(await info({ pad: "x".repeat(1000) })).toEqual({ pad: "x".repeat(1000) });
    expect(await info({ pad: "x".repeat(1020) })).toBeUndefined();
    expect(await info("Ann")).toBeUndefined();
    expect(await info(["Ann"])).toBeUndefined();
    expect(await info(null)).toBeUndefined();
    const signed = await v.verify(await signFanoutToken(SECRET, { subscribe: ["*"] }, { subject: "ann", info: { name: "Ann" } }));
    expect(signed).toMatchObject({ subject: "ann", info: { name: "Ann" } });
  });

  it("treats a token without the fanout claim as granting nothing", async () => {
    const t = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).sign(enc.encode(SECRET));
    expect((await v.verify(t)).grants).toEqual({ subscribe: [], publish: [], admin: false });
  });

  it("refuses expired, not-yet-valid, forged, alg:none, wrong-alg and malformed tokens with 401", async () => {
    const expired = await new SignJWT({ fanout: { subscribe: ["*"] } }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() - 60).sign(enc.encode(SECRET));
    expect((await refusal(v.verify(expired))).code).toBe("token_expired");

    const early = await new SignJWT({ fanout: { subscribe: ["*"] } }).setProtectedHeader({ alg: "HS256" }).setNotBefore(now() + 60).sign(enc.encode(SECRET));
    expect((await refusal(v.verify(early))).code).toBe("token_not_yet_valid");

    const forged = await signFanoutToken("another-secret", { subscribe: ["*"] });
    expect((await refusal(v.verify(forged))).code).toBe("invalid_token");

    const good = await signFanoutToken(SECRET, { subscribe: ["a"] });
    const [h, , s] = good.split(".");
    const tampered = `${h}.${b64({ fanout: { subscribe: ["*"] } })}.${s}`;
    expect((await refusal(v.verify(tampered))).code).toBe("invalid_token");

    const none = `${b64({ alg: "none", typ: "JWT" })}.${b64({ fanout: { subscribe: ["*"] } })}.`;
    expect((await refusal(v.verify(none))).status).toBe(401);
    const noneUpper = `${b64({ alg: "NONE" })}.${b64({ fanout: { subscribe: ["*"] } })}.`;
    expect((await refusal(v.verify(noneUpper))).status).toBe(401);

    const hs512 = await new SignJWT({ fanout: { subscribe: ["*"] } }).setProtectedHeader({ alg: "HS512" }).sign(enc.encode(SECRET));
    expect((await refusal(v.verify(hs512))).status).toBe(401);

    const { privateKey } = await generateKeyPair("RS256");
    const rs = await new SignJWT({ fanout: { subscribe: ["*"] } }).setProtectedHeader({ alg: "RS256" }).sign(privateKey);
    expect((await refusal(v.verify(rs))).status).toBe(401);

    for (const junk of ["", "abc", "a.b", "a.b.c.d", "x".repeat(9000), "😀.😀.😀", `${b64("str")}.${b64({})}.x`, `${b64({ alg: "HS256" })}.bm90anNvbg.x`]) {
      expect((await refusal(v.verify(junk))).status, junk.slice(0, 20)).toBe(401);
    }
  });

  it("refuses a malformed fanout claim with 401 rather than reading it as empty", async () => {
    for (const fanout of ["*", ["*"], { subscribe: "*" }, { publish: [1] }, { subscribe: [""] }, { admin: "true" }, { admin: 1 }]) {
      const t = await new SignJWT({ fanout }).setProtectedHeader({ alg: "HS256" }).sign(enc.encode(SECRET));
      expect((await refusal(v.verify(t))).code, JSON.stringify(fanout)).toBe("invalid_token");
    }
  });

  it("reads fanout.admin only as the literal true", async () => {
    for (const [admin, expected] of [[true, true], [false, false], [undefined, false]] as const) {
      const t = await new SignJWT({ fanout: { admin } }).setProtectedHeader({ alg: "HS256" }).sign(enc.encode(SECRET));
      expect((await v.verify(t)).grants.admin, String(admin)).toBe(expected);
    }
  });

  it("allows a small clock skew on exp and nbf", async () => {
    const justExpired = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() - 2).sign(enc.encode(SECRET));
    await expect(v.verify(justExpired)).resolves.toBeDefined();
    const strict = new JwtVerifier({ secret: SECRET, clockToleranceSeconds: 0 });
    expect((await refusal(strict.verify(justExpired))).code).toBe("token_expired");
  });

  it("checks iss and aud when configured", async () => {
    const strict = new JwtVerifier({ secret: SECRET, issuer: "https://auth.example", audience: "fanout" });
    const ok = await signFanoutToken(SECRET, {}, { issuer: "https://auth.example", audience: "fanout" });
    await expect(strict.verify(ok)).resolves.toBeDefined();
    for (const t of [
      await signFanoutToken(SECRET, {}, { issuer: "https://evil.example", audience: "fanout" }),
      await signFanoutToken(SECRET, {}, { issuer: "https://auth.example", audience: "other" }),
      await signFanoutToken(SECRET, {}),
    ]) {
      expect((await refusal(strict.verify(t))).code).toBe("invalid_token");
    }
  });

  it("is not configured without a secret or key set, and then verifies nothing", async () => {
    const none = new JwtVerifier({});
    expect(none.configured).toBe(false);
    expect((await refusal(none.verify(await signFanoutToken(SECRET, {})))).status).toBe(401);
  });
});

describe("JwtVerifier with FANOUT_JWKS_URL (RS256, ES256, EdDSA)", () => {
  let server: Server;
  let url: string;
  const keys: Record<string, { privateKey: CryptoKey; publicKey: CryptoKey }> = {};
  let served: unknown = { keys: [] };

  beforeAll(async () => {
    const jwks = [];
    for (const alg of ["RS256", "ES256", "EdDSA"] as const) {
      keys[alg] = await generateKeyPair(alg, { extractable: true });
      jwks.push({ ...(await exportJWK(keys[alg].publicKey)), kid: `k-${alg}`, alg, use: "sig" });
    }
    served = { keys: jwks };
    server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(served));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const sign = (alg: string, claims: object = { fanout: { subscribe: ["a:*"] } }, kid = `k-${alg}`) =>
    new SignJWT({ ...claims }).setProtectedHeader({ alg, kid }).setExpirationTime(now() + 60).sign(keys[alg].privateKey);

  it("verifies RS256, ES256 and EdDSA tokens from the key set", async () => {
    const v = new JwtVerifier({ jwksUrl: url });
    for (const alg of ["RS256", "ES256", "EdDSA"]) {
      expect((await v.verify(await sign(alg))).grants.subscribe, alg).toEqual(["a:*"]);
    }
  });

  it("refuses algorithm confusion: HS256 signed with the RSA public key, with and without a secret", async () => {
    const pem = await exportSPKI(keys.RS256.publicKey);
    const jwk = JSON.stringify(await exportJWK(keys.RS256.publicKey));
    for (const secretLike of [pem, jwk]) {
      const t = await new SignJWT({ fanout: { subscribe: ["*"] } }).setProtectedHeader({ alg: "HS256", kid: "k-RS256" }).sign(enc.encode(secretLike));
      expect((await refusal(new JwtVerifier({ jwksUrl: url }).verify(t))).status).toBe(401);
      expect((await refusal(new JwtVerifier({ jwksUrl: url, secret: SECRET }).verify(t))).status).toBe(401);
    }
  });

  it("refuses a key used for another algorithm, an unknown kid and a foreign key", async () => {
    const v = new JwtVerifier({ jwksUrl: url });
    // ES256 key id on an RS256 signature: the RSA key is not under that kid.
    const mixed = await new SignJWT({}).setProtectedHeader({ alg: "RS256", kid: "k-ES256" }).sign(keys.RS256.privateKey);
    expect((await refusal(v.verify(mixed))).status).toBe(401);
    const other = await generateKeyPair("ES256");
    const foreign = await new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "k-ES256" }).sign(other.privateKey);
    expect((await refusal(v.verify(foreign))).code).toBe("invalid_token");
    const unknownKid = await new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "nope" }).sign(other.privateKey);
    expect((await refusal(v.verify(unknownKid))).status).toBe(401);
  });

  it("answers 503, not 401, when the key set cannot be fetched", async () => {
    const v = new JwtVerifier({ jwksUrl: "http://127.0.0.1:1/jwks.json" });
    const err = await refusal(v.verify(await sign("ES256")));
    expect(err.status).toBe(503);
    expect(err.headers["Retry-After"]).toBeDefined();
  });
});
