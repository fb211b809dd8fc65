import { createHash, createHmac } from "node:crypto";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { relayFixture } from "../../test/support/relay-harness.js";
import { brokerModes } from "../../test/support/modes.js";

/**
 * Replays of captured, validly signed deliveries, against a relay on each broker. What a
 * replayer can change is what the provider does not sign: the delivery id header, the
 * event-name header, headers it adds or drops.
 */
const SECRETS = { github: "gh-replay-secret", vercel: "vc-replay-secret", netlify: "nl-replay-secret", generic: "generic-replay-secret" };
const nowS = () => Math.floor(Date.now() / 1000);
const hmac = (alg: "sha1" | "sha256", secret: string, data: string) => createHmac(alg, secret).update(data).digest("hex");
const sha256Hex = (data: string) => createHash("sha256").update(data).digest("hex");

/** A GitHub push as GitHub sends it (trimmed): signed body, unsigned delivery and event headers. */
function githubPush(after: string, pushedAt = nowS()) {
  const body = JSON.stringify({
    ref: "refs/heads/main",
    before: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    after,
    repository: { id: 1296269, full_name: "octo/site", pushed_at: pushedAt },
    head_commit: { id: after, timestamp: "2026-11-30T08:00:00Z", message: "deploy" },
    pusher: { name: "octo" },
  });
  return { body, signature: { "X-Hub-Signature-256": `sha256=${hmac("sha256", SECRETS.github, body)}` } };
}

const modes = brokerModes();

describe.each(modes)("hook replays on the relay ($name)", (mode) => {
  const { start, open } = relayFixture();
  const env = () => ({
    ...mode.env(),
    FANOUT_GITHUB_SECRET: SECRETS.github,
    FANOUT_VERCEL_SECRET: SECRETS.vercel,
    FANOUT_NETLIFY_SECRET: SECRETS.netlify,
    FANOUT_HOOK_SECRET: SECRETS.generic,
    FANOUT_HOOK_SCOPE: "site",
  });
  const post = async (base: string, provider: string, body: string, headers: Record<string, string>) => {
    const res = await fetch(`${base}/v1/hooks/${provider}`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body });
    return { status: res.status, json: (await res.json()) as any };
  };

  it("broadcasts a captured GitHub push once, however many fresh X-GitHub-Delivery ids it is replayed under", async () => {
    const r = await start(env());
    const c = await open("channel=invalidate:site");
    await c.waitReady();
    const push = githubPush("a".repeat(40));
    const first = await post(r.base, "github", push.body, { ...push.signature, "X-GitHub-Event": "push", "X-GitHub-Delivery": crypto.randomUUID() });
    expect(first.status).toBe(200);
    expect(first.json.duplicate).toBe(false);
    for (let i = 0; i < 20; i++) {
      const replay = await post(r.base, "github", push.body, { ...push.signature, "X-GitHub-Event": "push", "X-GitHub-Delivery": crypto.randomUUID() });
      expect(replay.status, `replay ${i}`).toBe(200);
      expect(replay.json.duplicate, `replay ${i}`).toBe(true);
    }
    // The same signed body relabelled as another mapped event is not that event.
    for (const event of ["release", "deployment_status"]) {
      const relabelled = await post(r.base, "github", push.body, { ...push.signature, "X-GitHub-Event": event, "X-GitHub-Delivery": crypto.randomUUID() });
      expect(relabelled.status, event).toBe(202);
    }
    const ping = JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 1 });
    const asPush = await post(r.base, "github", ping, { "X-Hub-Signature-256": `sha256=${hmac("sha256", SECRETS.github, ping)}`, "X-GitHub-Event": "push" });
    expect(asPush.status).toBe(202);
    // A new push is new: it arrives after anything the replays could have sent.
    const next = githubPush("b".repeat(40));
    expect((await post(r.base, "github", next.body, { ...next.signature, "X-GitHub-Event": "push" })).json.duplicate).toBe(false);
    await c.waitMessages(2);
    expect(c.envelopes().map((e) => (e.data as { deployId: string }).deployId)).toEqual(["a".repeat(40), "b".repeat(40)]);
  });

  it("refuses provider deliveries whose signed time is older than the dedupe window (401 stale_delivery)", async () => {
    const r = await start(env());
    const old = githubPush("c".repeat(40), nowS() - 2 * 86_400);
    const stale = await post(r.base, "github", old.body, { ...old.signature, "X-GitHub-Event": "push" });
    expect(stale.status).toBe(401);
    expect(stale.json.error.code).toBe("stale_delivery");

    const vercel = (createdAt: number) => JSON.stringify({ id: `evt_${createdAt}`, type: "deployment.succeeded", createdAt, payload: { deployment: { id: "dpl_1" } } });
    const oldVercel = vercel(Date.now() - 2 * 86_400_000);
    expect((await post(r.base, "vercel", oldVercel, { "x-vercel-signature": hmac("sha1", SECRETS.vercel, oldVercel) })).json.error.code).toBe("stale_delivery");
    const freshVercel = vercel(Date.now());
    expect((await post(r.base, "vercel", freshVercel, { "x-vercel-signature": hmac("sha1", SECRETS.vercel, freshVercel) })).status).toBe(200);

    const netlifyBody = JSON.stringify({ id: "5ebc34bf4fea0b01f02efa3a", state: "ready", updated_at: new Date(Date.now() - 3 * 86_400_000).toISOString() });
    const jws = (iat: number) => new SignJWT({ sha256: sha256Hex(netlifyBody) }).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuer("netlify").setIssuedAt(iat).sign(new TextEncoder().encode(SECRETS.netlify));
    expect((await post(r.base, "netlify", netlifyBody, { "X-Webhook-Signature": await jws(nowS() - 2 * 86_400) })).json.error.code).toBe("stale_delivery");
    expect((await post(r.base, "netlify", netlifyBody, { "X-Webhook-Signature": await jws(nowS()) })).status).toBe(200);
  });

  it("generic hook: a timestamped signature is accepted within the tolerance, once, and is stale after", async () => {
    const r = await start(env());
    const body = JSON.stringify({ tags: ["home"], scope: "g" });
    const signed = (t: number, b = body) => ({ "X-Fanout-Timestamp": String(t), "X-Fanout-Signature": `sha256=${hmac("sha256", SECRETS.generic, `${t}.${b}`)}` });
    const t0 = nowS();
    expect((await post(r.base, "generic", body, signed(t0))).json.duplicate).toBe(false);
    const replay = await post(r.base, "generic", body, { ...signed(t0), "X-Fanout-Delivery": "fresh-name" });
    expect(replay.json.duplicate).toBe(true);
    // The same body, deliberately sent again, is a new delivery under a new timestamp.
    expect((await post(r.base, "generic", body, signed(t0 + 1))).json.duplicate).toBe(false);
    for (const t of [t0 - 310, t0 + 310]) {
      const res = await post(r.base, "generic", body, signed(t));
      expect(res.status, String(t - t0)).toBe(401);
      expect(res.json.error.code).toBe("stale_delivery");
    }
    // One form cannot pass for the other.
    const bodyOnly = `sha256=${hmac("sha256", SECRETS.generic, body)}`;
    expect((await post(r.base, "generic", body, { "X-Fanout-Timestamp": String(t0), "X-Fanout-Signature": bodyOnly })).json.error.code).toBe("invalid_signature");
    expect((await post(r.base, "generic", body, { "X-Fanout-Signature": signed(t0)["X-Fanout-Signature"] })).json.error.code).toBe("invalid_signature");
    expect((await post(r.base, "generic", body, { ...signed(t0), "X-Fanout-Timestamp": `${t0}.5` })).json.error.code).toBe("invalid_signature");
  });

  it("generic hook: a body-only signature is deduplicated on the body, not on X-Fanout-Delivery; FANOUT_HOOK_REQUIRE_TIMESTAMP refuses it", async () => {
    const r = await start(env());
    const body = JSON.stringify({ paths: ["/blog"], scope: "b" });
    const sig = { "X-Fanout-Signature": `sha256=${hmac("sha256", SECRETS.generic, body)}` };
    expect((await post(r.base, "generic", body, { ...sig, "X-Fanout-Delivery": "d-1" })).json.duplicate).toBe(false);
    for (const name of ["d-2", "d-3"]) {
      expect((await post(r.base, "generic", body, { ...sig, "X-Fanout-Delivery": name })).json.duplicate, name).toBe(true);
      expect((await post(r.base, "generic", body, { ...sig, "Idempotency-Key": name })).json.duplicate, name).toBe(true);
    }
    const strict = await start({ ...env(), FANOUT_HOOK_REQUIRE_TIMESTAMP: "true" });
    const refused = await post(strict.base, "generic", body, sig);
    expect(refused.status).toBe(401);
    expect(refused.json.error.code).toBe("timestamp_required");
  });
});
