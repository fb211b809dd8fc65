import { Hono } from "hono";
import { FanoutError } from "../../protocol/errors.js";
import { decodeJsonBody } from "../../protocol/publish-request.js";
import type { Publisher } from "../../protocol/publisher.js";
import type { InvalidationStore } from "../invalidation-store.js";
import { readBody } from "../read-body.js";
import { runInvalidation } from "../invalidation.js";
import { genericHook } from "./generic.js";
import { githubHook } from "./github.js";
import { DEFAULT_HOOK_MAPPING, type HookMapping } from "./hook-mapping.js";
import { DEFAULT_HOOK_POLICY, type HookPolicy, type HookProvider } from "./hook-provider.js";
import { claimFor } from "./hook-delivery.js";
import { netlifyHook } from "./netlify.js";
import { vercelHook } from "./vercel.js";

export const HOOK_PROVIDERS: readonly HookProvider[] = [githubHook, vercelHook, netlifyHook, genericHook];

export interface HooksRouteDeps {
  publisher: Publisher;
  store: InvalidationStore;
  maxBodyBytes: number;
  /** Secret per provider name; a provider without one answers 404 (the hook is off). */
  secrets: Partial<Record<string, string>>;
  mapping?: Partial<HookMapping>;
  /**
   * How long a delivery is remembered (providers retry for hours); a delivery whose signed
   * time is older than this is refused, since a replay of it could no longer be recognised.
   */
  deliveryTtlSeconds: number;
  /** Generic-hook signing rules (timestamp tolerance, body-only signatures allowed or not). */
  policy?: Partial<HookPolicy>;
  providers?: readonly HookProvider[];
}


/**
 * `POST /v1/hooks/:provider`. The signature is checked over the raw bytes before the body
 * is parsed, so an unsigned request learns nothing but 401. A delivery is named and dated by
 * signed bytes only (see hook-delivery.ts); it is claimed before the work and released if
 * the work fails, so a provider's retry after a 503 is processed while a redelivery, or a
 * replay, of a processed hook is not broadcast again.
 */
export function hooksRoute(deps: HooksRouteDeps): Hono {
  const providers = new Map((deps.providers ?? HOOK_PROVIDERS).map((p) => [p.name, p]));
  const mapping: HookMapping = { ...DEFAULT_HOOK_MAPPING, ...deps.mapping };
  const policy: HookPolicy = { ...DEFAULT_HOOK_POLICY, ...deps.policy };
  const app = new Hono();
  app.post("/v1/hooks/:provider", async (c) => {
    const name = c.req.param("provider");
    const provider = providers.get(name);
    if (!provider) throw new FanoutError(404, "unknown_hook", `no hook provider ${JSON.stringify(name)}`);
    const secret = deps.secrets[name];
    if (!secret) throw new FanoutError(404, "hook_not_configured", `the ${name} hook has no secret configured`);
    const raw = await readBody(c, deps.maxBodyBytes);
    if (!(await provider.verify(c, raw, secret, policy))) {
      throw new FanoutError(401, "invalid_signature", `missing or invalid ${name} signature`);
    }
    const action = provider.interpret(c, decodeJsonBody(raw, deps.maxBodyBytes), mapping, policy);
    if (action.kind === "ignore") return c.json({ ignored: true, reason: action.reason }, 202);

    const delivery = action.delivery.key;
    const { claim, ttlSeconds } = await claimFor(name, action.delivery, deps.deliveryTtlSeconds);
    if (!(await deps.store.claimDelivery(claim, ttlSeconds))) return c.json({ duplicate: true, delivery });
    try {
      const out = await runInvalidation(deps, action.invalidation, { source: name, event: action.event, idempotencyId: `hook:${claim}` });
      return c.json({ id: out.id, receivers: out.receivers, deleted: out.deleted, duplicate: out.duplicate, delivery });
    } catch (err) {
      await deps.store.releaseDelivery(claim).catch(() => undefined);
      throw err;
    }
  });
  return app;
}
