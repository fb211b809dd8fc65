import type { Context } from "hono";
import type { Invalidation } from "../invalidation.js";
import type { HookMapping } from "./hook-mapping.js";

/** What a verified delivery asks for: an invalidation, or nothing (with the reason). */
export type HookAction =
  | {
      kind: "invalidate";
      invalidation: Invalidation;
      deliveryId?: string;
      event?: string;
      /** How long this delivery id is remembered, when shorter than the hook default. */
      deliveryTtlSeconds?: number;
    }
  | { kind: "ignore"; reason: string; deliveryId?: string; event?: string };

/** One deployment-hook provider: how it signs its deliveries and what they mean. */
export interface HookProvider {
  readonly name: string;
  /** Checks the provider's signature over the raw body (constant time); never throws. */
  verify(c: Context, raw: Uint8Array<ArrayBuffer>, secret: string): Promise<boolean>;
  /** Maps a verified delivery's JSON body to an action; throws FanoutError 400 on bad input. */
  interpret(c: Context, body: unknown, mapping: HookMapping): HookAction;
}
