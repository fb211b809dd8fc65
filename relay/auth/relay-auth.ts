import type { Context } from "hono";
import type { PublishMessage } from "../../protocol/publish-request.js";
import type { PresenceIdentity } from "../presence/presence-store.js";

/**
 * What a caller of the operations endpoints may see: `names` (the channels, patterns and
 * cursor in `/v1/stats`) or `totals` (counts only, nothing a client chose as a name).
 */
export type OpsAccess = "names" | "totals";

/** Who may publish and subscribe to what: the relay's one auth seam. */
export interface RelayAuth {
  /** 401 unless the request carries a valid publisher credential; called before a body is read. */
  authenticatePublisher(c: Context): Promise<void>;
  authorizePublish(c: Context, messages: PublishMessage[]): Promise<void>;
  /**
   * Throws unless the caller may open these subscriptions; returns when the grant ends (ms
   * since the epoch: the JWT's `exp`, or for a ticket its minting token's), undefined when it
   * never does (keys, public channels, anonymous callers, tickets minted by keys).
   */
  authorizeSubscribe(c: Context, channels: string[], patterns: string[]): Promise<number | undefined>;
  /**
   * Who an (already authorized) subscriber is, for presence: the `sub` and `info` claims of
   * its JWT; `sub` "" (anonymous) for tickets, keys and callers without a token. Optional:
   * an auth without it makes every subscriber anonymous.
   */
  identify?(c: Context): Promise<PresenceIdentity>;
  /**
   * What this caller may read of `/v1/stats`. Throws 401 for a credential that does not
   * verify and 403 for one that verifies without the right to names; a caller with no
   * credential gets `totals` whenever any auth is configured.
   */
  authorizeOps(c: Context): Promise<OpsAccess>;
}
