import type { PublishMessage, PublishResult } from "./publish-request.js";

/**
 * The storage seam under the shared publish/invalidate routes: Upstash REST at the edge,
 * the relay's broker (Redis or memory) in Node. A batch is one round trip and atomic with
 * its log append; results come back in request order.
 */
export interface Publisher {
  publish(messages: PublishMessage[]): Promise<PublishResult[]>;
}
