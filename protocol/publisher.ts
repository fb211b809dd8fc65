import type { PublishMessage, PublishResult } from "./publish-request.js";

/**
 * The storage seam under the shared publish/invalidate routes: Upstash REST at the edge,
 * the relay's broker (Redis or memory) in Node. A batch is one round trip and atomic with
 * its log append; results come back in request order.
 *
 * The relay's brokers take a call's place in the publish order when it is made, before its
 * promise settles: of two calls with messages for one channel, the first call's are logged
 * and delivered first. The relay relies on it to let publishes pipelined on one connection go
 * to Redis together. (The edge's REST publisher promises nothing of the kind; nothing
 * pipelines there.)
 */
export interface Publisher {
  publish(messages: PublishMessage[]): Promise<PublishResult[]>;
}
