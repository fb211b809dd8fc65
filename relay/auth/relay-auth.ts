import type { Context } from "hono";
import type { PublishMessage } from "../../protocol/publish-request.js";

/** Who may publish and subscribe to what: the relay's one auth seam. */
export interface RelayAuth {
  /** 401 unless the request carries a valid publisher credential; called before a body is read. */
  authenticatePublisher(c: Context): Promise<void>;
  authorizePublish(c: Context, messages: PublishMessage[]): Promise<void>;
  authorizeSubscribe(c: Context, channels: string[], patterns: string[]): Promise<void>;
}
