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
import type { HookProvider } from "./hook-provider.js";
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
  /** How long a delivery id is remembered (providers retry for hours). */
  deliveryTtlSeconds: number;
  providers?: readonly HookProvider[];
}


/**
 * `POST /v1/hooks/:provider`. The signature is checked over the raw bytes before the body
 * is parsed, so an unsigned request learns nothing but 401. A delivery id is claimed before
 * the work and released if the work fails, so a provider's retry after a 503 is processed
 * while a redelivery of a processed hook is not broadcast again.
 */
export function hooksRoute(deps: HooksRouteDeps): Hono {
  const providers = new Map((deps.providers ?? HOOK_PROVIDERS).map((p) => [p.name, p]));
  const mapping: HookMapping = { ...DEFAULT_HOOK_MAPPING, ...deps.mapping };
  const app = new Hono();
  app.post("/v1/hooks/:provider", async (c) => {
    const name = c.req.param("provider");
    const provider = providers.get(name);
    if (!provider) throw new FanoutError(404, "unknown_hook", `no hook provider ${JSON.stringify(name)}`);
    const secret = deps.secrets[name];
    if (!secret) throw new FanoutError(404, "hook_not_configured", `the ${name} hook has no secret configured`);
    const raw = await readBody(c, deps.maxBodyBytes);
    if (!(await provider.verify(c, raw, secret))) {
      throw new FanoutError(401, "invalid_signature", `missing or invalid ${name} signature`);
    }
    const action = provider.interpret(c, decodeJsonBody(raw, deps.maxBodyBytes), mapping);
    const delivery = action.deliveryId;
    if (action.kind === "ignore") return c.json({ ignored: true, reason: action.reason, delivery }, 202);

    const claim = delivery === undefined ? undefined : `${name}:${delivery}`;
    const ttl = Math.min(deps.deliveryTtlSeconds, action.deliveryTtlSeconds ?? Infinity);
    if (claim !== undefined && !(await deps.store.claimDelivery(claim, ttl))) {
      return c.json({ duplicate: true, delivery });
    }
    try {
      const out = await runInvalidation(deps, action.invalidation, {
        source: name,
        event: action.event,
        idempotencyId: claim === undefined ? undefined : `hook:${claim}`.slice(0, 256),
      });
      return c.json({ id: out.id, receivers: out.receivers, deleted: out.deleted, duplicate: out.duplicate, delivery });
    } catch (err) {
      if (claim !== undefined) await deps.store.releaseDelivery(claim).catch(() => undefined);
      throw err;
    }
  });
  return app;
}
