import type { Invalidation } from "../invalidation.js";

/**
 * How provider deployment events become invalidations. A matching event (a GitHub `push`,
 * a successful GitHub `deployment_status`, a published `release`; Vercel
 * `deployment.succeeded`/`deployment.promoted`; a Netlify deploy in state `ready`) becomes
 * one invalidation on `scope` of these keys, tags and paths, carrying the deploy id.
 * Anything else is acknowledged (202) and ignored. The generic hook carries its own body.
 */
export interface HookMapping {
  scope: string;
  keys: string[];
  tags: string[];
  paths: string[];
  githubEvents: string[];
  vercelEvents: string[];
  netlifyStates: string[];
}

export const DEFAULT_HOOK_MAPPING: HookMapping = {
  scope: "default",
  keys: [],
  tags: [],
  paths: [],
  githubEvents: ["push", "deployment_status", "release"],
  vercelEvents: ["deployment.succeeded", "deployment.promoted"],
  netlifyStates: ["ready"],
};

export function deployInvalidation(m: HookMapping, deployId: string | undefined): Invalidation {
  const inv: Invalidation = { scope: m.scope, keys: [...m.keys], tags: [...m.tags], paths: [...m.paths] };
  if (deployId) inv.deployId = deployId.slice(0, 256);
  return inv;
}

/** A field of a provider's JSON body, when it is a non-empty string. */
export function field(body: unknown, ...path: string[]): string | undefined {
  let v: unknown = body;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  if (typeof v === "number") return String(v);
  return typeof v === "string" && v.length > 0 ? v : undefined;
}

/**
 * A provider's timestamp as ms since the epoch: a number (seconds when below 1e12, else
 * ms) or an ISO 8601 string; undefined when absent or unreadable.
 */
export function timeOf(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return value < 1e12 ? value * 1000 : value;
  if (typeof value === "string" && value.length > 0 && value.length <= 64) {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

/** The latest readable timestamp at these paths of `body` (an event is as recent as its newest time). */
export function latestTime(body: unknown, ...paths: string[][]): number | undefined {
  let latest: number | undefined;
  for (const path of paths) {
    let v: unknown = body;
    for (const p of path) v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[p] : undefined;
    const t = timeOf(v);
    if (t !== undefined && (latest === undefined || t > latest)) latest = t;
  }
  return latest;
}
