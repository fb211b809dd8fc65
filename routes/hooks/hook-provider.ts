import type { Context } from "hono";
import type { Invalidation } from "../invalidation.js";
import type { HookMapping } from "./hook-mapping.js";
import type { SignedDelivery } from "./hook-delivery.js";

/** What a verified delivery asks for: an invalidation, or nothing (with the reason). */
export type HookAction =
  | {
      kind: "invalidate";
      invalidation: Invalidation;
      /** Identity and time of the event, from signed bytes only: what deduplication keys on. */
      delivery: SignedDelivery;
      event?: string;
    }
  | { kind: "ignore"; reason: string; event?: string };

/** Signing rules that are settings rather than a provider's fixed scheme. */
export interface HookPolicy {
  /** How far `X-Fanout-Timestamp` may be from this clock, seconds (`FANOUT_HOOK_TOLERANCE`). */
  toleranceSeconds: number;
  /** Refuse generic deliveries signed over the body alone (`FANOUT_HOOK_REQUIRE_TIMESTAMP`). */
  requireTimestamp: boolean;
}

export const DEFAULT_HOOK_POLICY: HookPolicy = { toleranceSeconds: 300, requireTimestamp: false };

/** One deployment-hook provider: how it signs its deliveries and what they mean. */
export interface HookProvider {
  readonly name: string;
  /**
   * Checks the provider's signature over the raw body (constant time): false when it does
   * not verify; a FanoutError (401) when the policy refuses this kind of signature.
   */
  verify(c: Context, raw: Uint8Array<ArrayBuffer>, secret: string, policy: HookPolicy): Promise<boolean>;
  /** Maps a verified delivery's JSON body to an action; throws FanoutError 400 on bad input. */
  interpret(c: Context, body: unknown, mapping: HookMapping, policy: HookPolicy): HookAction;
}
