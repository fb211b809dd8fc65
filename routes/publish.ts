import { Hono, type Context } from "hono";
import { parsePublishBody, type PublishMessage, type PublishResult } from "../protocol/publish-request.js";
import type { Publisher } from "../protocol/publisher.js";
import { readJson } from "./read-body.js";

export interface PublishRouteDeps {
  publisher: Publisher;
  maxBodyBytes: number;
  maxBatch: number;
  /** Throws 401 unless the request carries a valid publisher credential; runs before the body is read. */
  authenticate(c: Context): Promise<void>;
  /**
   * Decides whether this request may publish to these channels; throws FanoutError 401/403
   * (or 429 when rate limited). All channels of a batch are checked before anything is
   * published, so a forbidden item refuses the whole batch.
   */
  authorizePublish(c: Context, messages: PublishMessage[]): Promise<void>;
  /**
   * Before the publisher is called: resolves once the publishes sent before this one on its
   * connection have their place in the publish order (the relay's pipelining order); undefined
   * when there is nothing to wait for.
   */
  inTurn?(c: Context): Promise<void> | undefined;
  /**
   * Called as soon as this request's messages have their place in the publish order (the
   * publisher takes it when called), before the broker answers: the relay then lets the next
   * publish pipelined on the connection take its own.
   */
  ordered?(c: Context): void;
  /** Called after a successful publish (metrics). */
  published?(messages: PublishMessage[], results: PublishResult[]): void;
}

/**
 * `POST /v1/publish`, one implementation for the edge functions and the relay: single
 * `{channel, data, type?, id?, meta?}` or batch `{messages: [...]}`.
 */
export function publishRoute(deps: PublishRouteDeps): Hono {
  const app = new Hono();
  app.post("/v1/publish", async (c) => {
    await deps.authenticate(c);
    const body = await readJson(c, deps.maxBodyBytes);
    const { batch, messages } = parsePublishBody(body, { maxBatch: deps.maxBatch, traceparent: c.req.header("traceparent") });
    await deps.authorizePublish(c, messages);
    const turn = deps.inTurn?.(c);
    if (turn) await turn;
    const publishing = deps.publisher.publish(messages);
    deps.ordered?.(c);
    const results = await publishing;
    deps.published?.(messages, results);
    return c.json(batch ? { results } : results[0]);
  });
  return app;
}
