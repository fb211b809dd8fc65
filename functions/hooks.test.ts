import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { hmac, sha256, toHex, utf8 } from "../routes/constant-time.js";
import { Redis } from "@upstash/redis/cloudflare";
import { inject } from "vitest";
import { storeCacheEntry } from "./cache-entry.js";
import { call, logEntries, plainSubscriber, redis, testEnv, uniq, type Env } from "./test/helpers.js";

const SECRETS = { github: "gh-secret", vercel: "vc-secret", netlify: "nl-secret", generic: "generic-secret" };

function hookEnv(scope: string, over: Env = {}): Env {
  return testEnv({
    FANOUT_GITHUB_SECRET: SECRETS.github,
    FANOUT_VERCEL_SECRET: SECRETS.vercel,
    FANOUT_NETLIFY_SECRET: SECRETS.netlify,
    FANOUT_HOOK_SECRET: SECRETS.generic,
    FANOUT_HOOK_SCOPE: scope,
    ...over,
  });
}

async function hex(alg: "SHA-1" | "SHA-256", secret: string, body: string): Promise<string> {
  return toHex(await hmac(alg, secret, utf8(body)));
}

async function netlifyJws(secret: string, body: string, iss = "netlify"): Promise<string> {
  return new SignJWT({ sha256: toHex(await sha256(utf8(body))) }).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuer(iss).sign(utf8(secret));
}

/** A provider's delivery: its body, how to sign it, and headers that are not the signature. */
interface Provider {
  name: "github" | "vercel" | "netlify" | "generic";
  body(delivery: string): string;
  headers(delivery: string): Record<string, string>;
  sign(body: string, secret: string): Promise<Record<string, string>>;
  /** A header that looks right but is signed with another secret, or over other bytes. */
  forge(body: string): Promise<Record<string, string>>;
}

const providers: Provider[] = [
  {
    name: "github",
    body: (d) => JSON.stringify({ ref: "refs/heads/main", after: `sha-${d}` }),
    headers: (d) => ({ "x-github-event": "push", "x-github-delivery": d }),
    sign: async (b, s) => ({ "x-hub-signature-256": `sha256=${await hex("SHA-256", s, b)}` }),
    forge: async (b) => ({ "x-hub-signature-256": `sha256=${await hex("SHA-256", "wrong", b)}` }),
  },
  {
    name: "vercel",
    body: (d) => JSON.stringify({ id: d, type: "deployment.succeeded", payload: { deployment: { id: `dpl-${d}` } } }),
    headers: () => ({}),
    sign: async (b, s) => ({ "x-vercel-signature": await hex("SHA-1", s, b) }),
    forge: async (b) => ({ "x-vercel-signature": await hex("SHA-1", SECRETS.vercel, `${b} `) }),
  },
  {
    name: "netlify",
    body: (d) => JSON.stringify({ id: d, state: "ready", site_id: "site" }),
    headers: () => ({}),
    sign: async (b, s) => ({ "x-webhook-signature": await netlifyJws(s, b) }),
    forge: async (b) => ({ "x-webhook-signature": await netlifyJws(SECRETS.netlify, `${b} `) }),
  },
  {
    name: "generic",
    body: () => JSON.stringify({ paths: ["/blog"], deployId: "b1" }),
    headers: (d) => ({ "x-fanout-delivery": d }),
    sign: async (b, s) => ({ "x-fanout-signature": `sha256=${await hex("SHA-256", s, b)}` }),
    forge: async (b) => ({ "x-fanout-signature": `sha256=${await hex("SHA-256", "wrong", b)}` }),
  },
];

describe.each(providers)("POST /v1/hooks/$name", (p) => {
  const secret = SECRETS[p.name];
  const post = (env: Env, body: string, headers: Record<string, string>) => call(env, `/v1/hooks/${p.name}`, { raw: body, headers, key: null });

  it("broadcasts a validly signed delivery once, however often it is redelivered", async () => {
    const scope = uniq(p.name);
    const env = hookEnv(scope);
    const channel = `invalidate:${p.name === "generic" ? "default" : scope}`;
    const delivery = uniq("delivery");
    const body = p.body(delivery);
    const headers = { ...p.headers(delivery), ...(await p.sign(body, secret)) };
    const sub = await plainSubscriber(channel);
    try {
      const first = await post(env, body, headers);
      expect(first.status).toBe(200);
      expect(first.json).toMatchObject({ id: expect.stringMatching(/^\d+-\d+-\d+$/), receivers: 1, deleted: 0, duplicate: false });
      const envelope = JSON.parse(await sub.next());
      expect(envelope).toMatchObject({ id: first.json.id, channel, type: "invalidate", data: { source: p.name } });
      if (p.name !== "generic") expect(envelope.data.deployId).toContain(delivery);

      const again = await post(env, body, headers);
      expect(again.status).toBe(200);
      expect(again.json).toMatchObject({ duplicate: true });
      await expect(sub.next(300)).rejects.toThrow(/no message/);
      expect((await logEntries(env, channel)).filter((e) => e.fields.d.includes(`"source":"${p.name}"`) && e.id === first.json.id.split("-").slice(1).join("-"))).toHaveLength(1);
    } finally {
      sub.close();
    }
  });

  it("treats a replay under a fresh delivery header as the same delivery (headers are not signed)", async () => {
    const env = hookEnv(uniq(p.name));
    const delivery = uniq("delivery");
    const body = p.body(delivery);
    const signature = await p.sign(body, secret);
    expect((await post(env, body, { ...p.headers(delivery), ...signature })).json.duplicate).toBe(false);
    for (let i = 0; i < 3; i++) {
      const replay = await post(env, body, { ...p.headers(uniq("fresh")), ...signature, "idempotency-key": uniq("k") });
      expect(replay.status).toBe(200);
      expect(replay.json.duplicate).toBe(true);
    }
  });

  it("refuses a bad signature with 401", async () => {
    const env = hookEnv(uniq(p.name));
    const delivery = uniq("delivery");
    const body = p.body(delivery);
    const r = await post(env, body, { ...p.headers(delivery), ...(await p.forge(body)) });
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe("invalid_signature");
    // A body signed with the right secret but altered afterwards.
    const tampered = await post(env, body.replace("}", ',"x":1}'), { ...p.headers(delivery), ...(await p.sign(body, secret)) });
    expect(tampered.status).toBe(401);
    const garbage = Object.fromEntries(Object.keys(await p.sign(body, secret)).map((h) => [h, "sha256=zz"]));
    expect((await post(env, body, { ...p.headers(delivery), ...garbage })).status).toBe(401);
  });

  it("refuses a missing signature with 401, before parsing the body", async () => {
    const env = hookEnv(uniq(p.name));
    const delivery = uniq("delivery");
    expect((await post(env, p.body(delivery), p.headers(delivery))).status).toBe(401);
    const notJson = await post(env, "{not json", p.headers(delivery));
    expect(notJson.status).toBe(401);
  });

  it("is off (404) without its secret", async () => {
    const env = testEnv();
    const delivery = uniq("delivery");
    const body = p.body(delivery);
    const r = await post(env, body, { ...p.headers(delivery), ...(await p.sign(body, secret)) });
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe("hook_not_configured");
  });
});

describe("hook mapping", () => {
  const app = new Redis({ url: inject("restUrl"), token: inject("restToken"), automaticDeserialization: false, enableTelemetry: false });

  it("a deploy event invalidates the configured tags and keys", async () => {
    const scope = uniq("site");
    const tag = uniq("pages");
    const [page, key] = [uniq("page"), uniq("key")];
    const env = hookEnv(scope, { FANOUT_HOOK_TAGS: tag, FANOUT_HOOK_KEYS: key, FANOUT_HOOK_PATHS: "/,/blog" });
    await storeCacheEntry(app, page, "v", { tags: [tag], prefix: env.FANOUT_LOG_PREFIX });
    await redis("SET", key, "v");
    const body = JSON.stringify({ id: uniq("nl"), state: "ready" });
    const r = await call(env, "/v1/hooks/netlify", { raw: body, key: null, headers: { "x-webhook-signature": await netlifyJws(SECRETS.netlify, body) } });
    expect(r.status).toBe(200);
    expect(r.json.deleted).toBe(2);
    expect(await redis("EXISTS", page)).toBe(0);
    const [entry] = await logEntries(env, `invalidate:${scope}`);
    expect(JSON.parse(entry.fields.d)).toMatchObject({ scope, keys: [key], tags: [tag], paths: ["/", "/blog"], source: "netlify", event: "deploy_ready" });
  });

  it("events that are not deployments are acknowledged with 202 and not broadcast", async () => {
    const scope = uniq("site");
    const env = hookEnv(scope);
    const ping = JSON.stringify({ zen: "hi" });
    const gh = await call(env, "/v1/hooks/github", {
      raw: ping,
      key: null,
      headers: { "x-github-event": "ping", "x-github-delivery": uniq("d"), "x-hub-signature-256": `sha256=${await hex("SHA-256", SECRETS.github, ping)}` },
    });
    expect(gh.status).toBe(202);
    expect(gh.json.ignored).toBe(true);
    const failed = JSON.stringify({ deployment_status: { state: "failure" }, deployment: { sha: "abc" } });
    const ds = await call(env, "/v1/hooks/github", {
      raw: failed,
      key: null,
      headers: { "x-github-event": "deployment_status", "x-hub-signature-256": `sha256=${await hex("SHA-256", SECRETS.github, failed)}` },
    });
    expect(ds.status).toBe(202);
    const created = JSON.stringify({ id: uniq("v"), type: "deployment.created" });
    const vc = await call(env, "/v1/hooks/vercel", { raw: created, key: null, headers: { "x-vercel-signature": await hex("SHA-1", SECRETS.vercel, created) } });
    expect(vc.status).toBe(202);
    const building = JSON.stringify({ id: uniq("n"), state: "building" });
    const nl = await call(env, "/v1/hooks/netlify", { raw: building, key: null, headers: { "x-webhook-signature": await netlifyJws(SECRETS.netlify, building) } });
    expect(nl.status).toBe(202);
    expect(await logEntries(env, `invalidate:${scope}`)).toHaveLength(0);
  });

  it("a Netlify signature from another issuer is refused", async () => {
    const env = hookEnv(uniq("site"));
    const body = JSON.stringify({ id: uniq("n"), state: "ready" });
    const r = await call(env, "/v1/hooks/netlify", { raw: body, key: null, headers: { "x-webhook-signature": await netlifyJws(SECRETS.netlify, body, "someone") } });
    expect(r.status).toBe(401);
  });

  it("the generic hook validates its body like /v1/invalidate and deletes keys", async () => {
    const env = hookEnv("unused");
    const k = uniq("gk");
    await redis("SET", k, "v");
    const good = JSON.stringify({ keys: [k], scope: uniq("g") });
    const r = await call(env, "/v1/hooks/generic", { raw: good, key: null, headers: { "x-fanout-signature": `sha256=${await hex("SHA-256", SECRETS.generic, good)}` } });
    expect(r.status).toBe(200);
    expect(r.json.deleted).toBe(1);
    const bad = JSON.stringify({ keys: "nope" });
    const b = await call(env, "/v1/hooks/generic", { raw: bad, key: null, headers: { "x-fanout-signature": `sha256=${await hex("SHA-256", SECRETS.generic, bad)}` } });
    expect(b.status).toBe(400);
    expect(b.json.error.code).toBe("invalid_keys");
  });

  it("the generic hook treats the same body-signed body as one delivery, whatever name it is sent under", async () => {
    const env = hookEnv("unused");
    const body = JSON.stringify({ tags: [uniq("t")], scope: uniq("g") });
    const headers = { "x-fanout-signature": `sha256=${await hex("SHA-256", SECRETS.generic, body)}` };
    const first = await call(env, "/v1/hooks/generic", { raw: body, key: null, headers });
    expect(first.status).toBe(200);
    expect(first.json.duplicate).toBe(false);
    const again = await call(env, "/v1/hooks/generic", { raw: body, key: null, headers });
    expect(again.json.duplicate).toBe(true);
    // The name is not signed, so a replayer could pick a fresh one: it names nothing.
    const named = await call(env, "/v1/hooks/generic", { raw: body, key: null, headers: { ...headers, "idempotency-key": uniq("k") } });
    expect(named.json.duplicate).toBe(true);
  });

  it("the generic hook's timestamped signature sends one body again under a new timestamp, and refuses an old one", async () => {
    const env = hookEnv("unused", { FANOUT_HOOK_TOLERANCE: "60" });
    const body = JSON.stringify({ tags: [uniq("t")], scope: uniq("g") });
    const t = Math.floor(Date.now() / 1000);
    const signed = async (ts: number) => ({ "x-fanout-timestamp": String(ts), "x-fanout-signature": `sha256=${await hex("SHA-256", SECRETS.generic, `${ts}.${body}`)}` });
    const post = async (ts: number) => call(env, "/v1/hooks/generic", { raw: body, key: null, headers: await signed(ts) });
    expect((await post(t)).json.duplicate).toBe(false);
    expect((await post(t)).json.duplicate).toBe(true);
    expect((await post(t + 1)).json.duplicate).toBe(false);
    const old = await post(t - 70);
    expect(old.status).toBe(401);
    expect(old.json.error.code).toBe("stale_delivery");
  });

  it("a GitHub delivery whose signed push time is older than FANOUT_HOOK_DEDUPE_TTL is refused as a replay", async () => {
    const env = hookEnv(uniq("site"), { FANOUT_HOOK_DEDUPE_TTL: "3600" });
    const push = (pushedAt: number) => JSON.stringify({ ref: "refs/heads/main", before: "0".repeat(40), after: uniq("sha"), repository: { pushed_at: pushedAt } });
    const send = async (body: string) =>
      call(env, "/v1/hooks/github", { raw: body, key: null, headers: { "x-github-event": "push", "x-github-delivery": uniq("d"), "x-hub-signature-256": `sha256=${await hex("SHA-256", SECRETS.github, body)}` } });
    const old = await send(push(Math.floor(Date.now() / 1000) - 7200));
    expect(old.status).toBe(401);
    expect(old.json.error.code).toBe("stale_delivery");
    expect((await send(push(Math.floor(Date.now() / 1000) - 60))).status).toBe(200);
  });

  it("a failed delivery is not remembered, so the provider's retry goes through", async () => {
    const scope = uniq("site");
    const delivery = uniq("d");
    const body = JSON.stringify({ id: delivery, type: "deployment.succeeded", payload: { deployment: { id: "x" } } });
    const headers = { "x-vercel-signature": await hex("SHA-1", SECRETS.vercel, body) };
    const prefix = `t${crypto.randomUUID().slice(0, 8)}`;
    // Delivery claimed, then the publish fails (the log keys hold the wrong type): the
    // claim must be released.
    const failing = hookEnv(scope, { FANOUT_LOG_PREFIX: prefix });
    for (let p = 0; p < 4; p++) await redis("SET", `{${prefix}:${p}}:log`, "not a stream");
    const r1 = await call(failing, "/v1/hooks/vercel", { raw: body, key: null, headers });
    expect(r1.status).toBe(503);
    for (let p = 0; p < 4; p++) await redis("DEL", `{${prefix}:${p}}:log`);
    const r2 = await call(failing, "/v1/hooks/vercel", { raw: body, key: null, headers });
    expect(r2.status).toBe(200);
    expect(r2.json.duplicate).toBe(false);
  });

  it("unknown providers are 404", async () => {
    const r = await call(hookEnv("x"), "/v1/hooks/gitlab", { raw: "{}", key: null });
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe("unknown_hook");
  });
});
