import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { signFanoutToken } from "../protocol/auth/sign-token.js";
import { call, testEnv } from "./test/helpers.js";

const SECRET = "edge-ticket-secret-0123456789abcdef0123";

describe("POST /v1/tickets at the edge", () => {
  it("ends a ticket with the token that minted it, and refuses a token without exp", async () => {
    const env = testEnv({ FANOUT_JWT_SECRET: SECRET });
    const shortLived = await signFanoutToken(SECRET, { subscribe: ["room:*"] }, { expiresIn: 6 });
    const capped = await call(env, "/v1/tickets", { body: { channels: ["room:1"], ttl: 300 }, key: shortLived });
    expect(capped.status).toBe(200);
    expect(capped.json.expiresIn).toBeLessThanOrEqual(6);

    const forever = await new SignJWT({ fanout: { subscribe: ["room:*"] } }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));
    const refused = await call(env, "/v1/tickets", { body: { channels: ["room:1"] }, key: forever });
    expect(refused.status).toBe(401);
    expect(refused.json.error.code).toBe("token_missing_exp");
    const lax = await call(testEnv({ FANOUT_JWT_SECRET: SECRET, FANOUT_JWT_REQUIRE_EXP: "false" }), "/v1/tickets", { body: { channels: ["room:1"] }, key: forever });
    expect(lax.status).toBe(200);
  });
});
