import { Hono, type Context } from "hono";
import type { PublishMessage } from "../protocol/publish-request.js";
import { errorResponse } from "../routes/error-response.js";
import { hooksRoute } from "../routes/hooks/hooks-route.js";
import { invalidateRoute } from "../routes/invalidate.js";
import { authenticatePublisher, authorizePublish, authorizeTicket, bearer, ticketLimit, type PublishAuthOptions } from "../routes/publish-auth.js";
import { ticketsRoute } from "../routes/tickets.js";
import { Tickets } from "../protocol/auth/tickets.js";
import { UpstashTicketStore } from "./upstash-ticket-store.js";
import { JwtVerifier } from "../protocol/auth/jwt-verifier.js";
import { publishRoute } from "../routes/publish.js";
import type { FunctionsConfig } from "./config.js";
import { UpstashInvalidationStore } from "./upstash-invalidation-store.js";
import { breakerFor, upstashClient } from "./upstash-client.js";
import { UpstashPublisher } from "./upstash-publisher.js";
import { ShardMap } from "../protocol/shard-map.js";
import { ShardedPublisher } from "../protocol/sharded-publisher.js";
import type { Publisher } from "../protocol/publisher.js";

/**
 * The edge app: the shared publish, invalidate and hook routes over Upstash REST. With a
 * sharded log, publishes go to each channel's shard by the relays' rule, and everything else
 * (tickets, tag sets, hook delivery ids) lives on shard 0, as on the relays.
 */
export function createApp(config: FunctionsConfig): Hono {
  const shards = config.shards.map((e) => ({ redis: upstashClient(e, config), breaker: breakerFor(e, config) }));
  const { redis, breaker } = shards[0];
  const perShard = shards.map((s) => new UpstashPublisher(s.redis, config.log, s.breaker));
  // A shard whose breaker is open is known to be down: a batch touching it writes nowhere.
  const publisher: Publisher =
    perShard.length === 1 ? perShard[0] : new ShardedPublisher(new ShardMap(config.log.partitions, perShard.length), perShard, config.log.prefix, (s) => !shards[s].breaker.isOpen);
  const store = new UpstashInvalidationStore(redis, config.log.prefix, breaker);
  const verifier = new JwtVerifier({
    secret: config.jwtSecret,
    jwksUrl: config.jwksUrl,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    clockToleranceSeconds: config.jwtClockSkewSeconds,
  });
  // No loopback at the edge: without keys, publishing is refused unless explicitly opened.
  const authOpts: PublishAuthOptions = { keys: config.publishKeys, verifier, allowAnonymous: config.allowAnonymousPublish, requireSubscriberExp: config.jwtRequireExp };
  const authenticate = (c: Context) => authenticatePublisher(c, bearer(c), authOpts).then(() => undefined);
  const authorize = (c: Context, messages: PublishMessage[]) => authorizePublish(c, messages, authOpts).then(() => undefined);
  const tickets = new Tickets(new UpstashTicketStore(redis, config.log.prefix, breaker), {
    defaultTtlSeconds: config.ticketTtlSeconds,
    maxTtlSeconds: config.ticketMaxTtlSeconds,
    maxSubscriptions: config.maxSubscriptionsPerConnection,
    patternLimits: config.patternLimits,
  });

  const app = new Hono();
  app.onError(errorResponse);
  app.notFound((c) => c.json({ error: { code: "not_found", message: "no such route" } }, 404));
  app.route("/", publishRoute({ publisher, maxBodyBytes: config.maxBodyBytes, maxBatch: config.maxBatch, authenticate, authorizePublish: authorize }));
  app.route("/", invalidateRoute({ publisher, store, maxBodyBytes: config.maxBodyBytes, authenticate, authorizePublish: authorize }));
  app.route(
    "/",
    hooksRoute({
      publisher,
      store,
      maxBodyBytes: config.maxBodyBytes,
      secrets: config.hookSecrets,
      mapping: config.hookMapping,
      deliveryTtlSeconds: config.hookDedupeSeconds,
      policy: config.hookPolicy,
    }),
  );
  app.route("/", ticketsRoute({ tickets, authenticate, authorize: (c, scope) => authorizeTicket(c, bearer(c), scope, authOpts, config.publicChannels).then(ticketLimit) }));
  return app;
}
