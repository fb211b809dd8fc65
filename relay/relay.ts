import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Hono } from "hono";
import { serve } from "@hono/node-server";
import type { RelayConfig } from "./config.js";
import type { Broker, MessageLog } from "./broker/broker.js";
import { MemoryBroker } from "./memory/memory-broker.js";
import { RedisBroker } from "./redis/redis-broker.js";
import { ShardedRedisBroker } from "./redis/sharded-redis-broker.js";
import { ShardedClusterBroker } from "./redis/sharded-cluster-broker.js";
import { Hub } from "./hub.js";
import { RelayMetrics } from "./metrics.js";
import { FlushScheduler } from "./sse/flush-scheduler.js";
import { QueueBudget } from "./sse/queue-budget.js";
import { HEARTBEAT } from "./sse/frame.js";
import { JwtRelayAuth } from "./auth/jwt-relay-auth.js";
import { PublishRateLimiter } from "./auth/publish-rate-limiter.js";
import { ticketsRoute } from "../routes/tickets.js";
import { corsMiddleware } from "./auth/cors.js";
import { JwtVerifier } from "../protocol/auth/jwt-verifier.js";
import { Tickets } from "../protocol/auth/tickets.js";
import { MemoryTicketStore } from "./memory/memory-ticket-store.js";
import { RedisTicketStore } from "./redis/redis-ticket-store.js";
import { ConnectionLimits } from "./connection-limits.js";
import type { RelayContext } from "./relay-context.js";
import { eventsRoute } from "./routes/events.js";
import { opsRoute } from "./routes/ops.js";
import { pageRoute } from "./routes/page.js";
import { dashboardRoute } from "./routes/dashboard.js";
import { examplesRoute } from "./routes/examples.js";
import { publishRoute } from "../routes/publish.js";
import { errorResponse } from "../routes/error-response.js";
import { invalidateRoute } from "../routes/invalidate.js";
import { hooksRoute } from "../routes/hooks/hooks-route.js";
import type { InvalidationStore } from "../routes/invalidation-store.js";
import type { TicketStore } from "../protocol/auth/ticket-store.js";
import { FanoutError } from "../protocol/errors.js";
import { RedisInvalidationStore } from "./redis/redis-invalidation-store.js";
import { MemoryInvalidationStore } from "./memory/memory-invalidation-store.js";
import type { RelayAuth } from "./auth/relay-auth.js";
import { hardenServer, serverOptions } from "./http-server.js";
import { publishesInOrder, publishPlaced, publishTurn } from "./publish-order.js";
import { Fleet } from "./ops/fleet.js";
import type { FleetStore } from "./ops/fleet-store.js";
import { defaultRelayId } from "./ops/relay-id.js";
import { MemoryFleetStore } from "./memory/memory-fleet-store.js";
import { RedisFleetStore } from "./redis/redis-fleet-store.js";
import { OpenStreams } from "./open-streams.js";
import { RedisControlBus } from "./redis/redis-control-bus.js";
import { subscriptionsRoute } from "./routes/subscriptions.js";
import { presenceRoute } from "./routes/presence.js";
import { PresenceTracker } from "./presence/presence-tracker.js";
import type { PresenceStore } from "./presence/presence-store.js";
import { RedisPresenceStore } from "./redis/redis-presence-store.js";
import { MemoryPresenceStore } from "./memory/memory-presence-store.js";

export interface Relay {
  app: Hono;
  context: RelayContext;
  /** Listens on config.port (0: any free port) and resolves with the bound port. */
  listen(): Promise<number>;
  /** SIGTERM behaviour: refuse new streams, end open ones so clients resume elsewhere, stop. */
  drain(graceMs?: number): Promise<void>;
  /** This relay in the fleet view (heartbeat, alerts). */
  fleet: Fleet;
}

function makeBroker(config: RelayConfig): Broker & MessageLog {
  const settings = { ...config.log };
  const timeout = config.redisCommandTimeoutMs;
  if (config.redisShards) return new ShardedRedisBroker(config.redisShards, settings, config.publishReplicas, timeout);
  if (config.redisUrl && config.clusterPubsub === "sharded") return new ShardedClusterBroker(config.redisUrl, settings, config.clusterClassicCopy, config.publishReplicas, timeout);
  return config.redisUrl ? new RedisBroker(config.redisUrl, settings, undefined, "classic", config.publishReplicas, timeout) : new MemoryBroker(settings);
}

/** Stores beside the broker, on its Redis command connection when there is one (shard 0's when sharded). */
function makeStores(config: RelayConfig, broker: Broker): { invalidation: InvalidationStore; tickets: TicketStore; fleet: FleetStore; presence: PresenceStore } {
  if (broker instanceof RedisBroker || broker instanceof ShardedRedisBroker || broker instanceof ShardedClusterBroker) {
    const p = config.log.prefix;
    const memory = broker instanceof ShardedRedisBroker ? broker.shardCommands : [broker.commands];
    return {
      invalidation: new RedisInvalidationStore(broker.commands, p),
      tickets: new RedisTicketStore(broker.commands, p),
      fleet: new RedisFleetStore(broker.commands, p, memory),
      presence: new RedisPresenceStore(broker.commands, p, config.presence.ttlMs),
    };
  }
  // Embedded broker: the fleet is this relay.
  return { invalidation: new MemoryInvalidationStore(), tickets: new MemoryTicketStore(), fleet: new MemoryFleetStore(), presence: new MemoryPresenceStore() };
}

/** Keys, JWTs and tickets as configured: the auth unless the embedder passes its own (tickets are always minted by it). */
function makeBuiltInAuth(config: RelayConfig, tickets: Tickets): JwtRelayAuth {
  return new JwtRelayAuth({
    keys: config.publishKeys,
    verifier: new JwtVerifier({
      secret: config.jwtSecret,
      jwksUrl: config.jwksUrl,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      clockToleranceSeconds: config.jwtClockSkewSeconds,
    }),
    publicChannels: config.publicChannels,
    tickets,
    rateLimiter: new PublishRateLimiter(config.publishRatePerSecond, config.publishBurst),
    requireExp: config.jwtRequireExp,
    trustedProxies: config.trustedProxies,
  });
}

export async function createRelay(config: RelayConfig, opts: { auth?: RelayAuth } = {}): Promise<Relay> {
  const relayId = config.relayId ?? defaultRelayId();
  const metrics = new RelayMetrics(relayId);
  const broker = makeBroker(config);
  const hub = new Hub(broker, broker, metrics, config.unsubscribeDelayMs, config.catchUpBacklog);
  const stores = makeStores(config, broker);
  const tickets = new Tickets(stores.tickets, {
    defaultTtlSeconds: config.ticketTtlSeconds,
    maxTtlSeconds: config.ticketMaxTtlSeconds,
    maxSubscriptions: config.maxSubscriptionsPerConnection,
    patternLimits: config.patternLimits,
  });
  const builtInAuth = makeBuiltInAuth(config, tickets);
  const rc: RelayContext = {
    config,
    broker,
    log: broker,
    hub,
    metrics,
    scheduler: new FlushScheduler(config.writeLingerMaxMs),
    queues: new QueueBudget(config.queueBudgetBytes),
    auth: opts.auth ?? builtInAuth,
    limits: new ConnectionLimits(config.maxConnections, config.maxConnectionsPerIp, config.patternLimits, config.maxRelayPatternCost),
    connections: new Set(),
    // Relay-to-relay requests go over shard 0 when the log is sharded (like the other shared stores).
    streams: new OpenStreams(relayId, broker instanceof RedisBroker || broker instanceof ShardedRedisBroker || broker instanceof ShardedClusterBroker ? new RedisControlBus(config.redisShards?.[0] ?? config.redisUrl!, broker.commands, config.log.prefix, relayId) : undefined),
    presence: new PresenceTracker(stores.presence, broker, config.presence, (where, err) => hub.fault(where, err), (action) => metrics.presenceEvents.inc({ action })),
    draining: false,
    startedAt: Date.now(),
  };
  metrics.watchQueuedBytes(() => rc.queues.bytes);
  metrics.watchBroker(() => broker.isReady());
  if (broker instanceof ShardedRedisBroker) metrics.watchShards(() => broker.shardsReady());
  await broker.start(hub);
  await hub.init();
  await rc.streams.start(rc);
  rc.presence.start();
  const fleet = new Fleet(rc, stores.fleet, { relayId, ...config.fleet, alerts: config.alerts });
  await fleet.start();

  const app = new Hono();
  app.onError((err, c) => {
    const res = errorResponse(err, c);
    // Every refusal, whatever route or check raised it, is counted here once, by code.
    if (err instanceof FanoutError) metrics.rejected.inc({ code: err.code });
    return res;
  });
  app.use("/v1/publish", publishesInOrder);
  const cors = corsMiddleware(config.corsOrigins);
  if (cors) app.use("/v1/*", cors);
  const store = stores.invalidation;
  const authenticate: RelayAuth["authenticatePublisher"] = (c) => rc.auth.authenticatePublisher(c);
  const authorizePublish: RelayAuth["authorizePublish"] = (c, messages) => rc.auth.authorizePublish(c, messages);
  app.route("/", opsRoute(rc, fleet));
  app.route("/", eventsRoute(rc) as unknown as Hono);
  app.route("/", subscriptionsRoute(rc));
  app.route("/", presenceRoute(rc));
  app.route(
    "/",
    publishRoute({
      publisher: broker,
      maxBodyBytes: config.maxBodyBytes,
      maxBatch: config.maxBatch,
      authenticate,
      authorizePublish,
      inTurn: publishTurn,
      ordered: publishPlaced,
      published: (_m, results) => {
        for (const r of results) metrics.published.inc({ result: r.duplicate ? "duplicate" : "published" });
      },
    }),
  );
  app.route("/", invalidateRoute({ publisher: broker, store, maxBodyBytes: config.maxBodyBytes, authenticate, authorizePublish }));
  app.route(
    "/",
    hooksRoute({ publisher: broker, store, maxBodyBytes: config.maxBodyBytes, secrets: config.hookSecrets, mapping: config.hookMapping, deliveryTtlSeconds: config.hookDedupeSeconds, policy: config.hookPolicy }),
  );
  app.route("/", ticketsRoute({ tickets, authenticate: (c) => builtInAuth.authenticateTicket(c), authorize: (c, scope) => builtInAuth.authorizeTicket(c, scope) }));
  app.route("/", pageRoute());
  app.route("/", dashboardRoute(rc, fleet));
  app.route("/", examplesRoute(config));
  app.notFound((c) => c.json({ error: { code: "not_found", message: `no route for ${c.req.method} ${c.req.path}` } }, 404));

  const heartbeat = setInterval(() => {
    for (const conn of rc.connections) conn.send(HEARTBEAT);
  }, config.heartbeatMs);
  heartbeat.unref();

  let server: Server | undefined;
  return {
    app,
    context: rc,
    fleet,
    listen: () =>
      new Promise((resolve) => {
        server = serve({ fetch: app.fetch, port: config.port, hostname: config.host, serverOptions: serverOptions(config) }, (info: AddressInfo) => resolve(info.port)) as Server;
        hardenServer(server, (code) => metrics.rejected.inc({ code }));
      }),
    drain: async (graceMs = config.drainGraceMs) => {
      rc.draining = true;
      // Others see `draining` at once; the report then stays until its TTL runs out.
      await fleet.heartbeat();
      fleet.stop();
      clearInterval(heartbeat);
      rc.queues.stop();
      const closed = server ? new Promise<void>((r) => server!.close(() => r())) : Promise.resolve();
      const streams = [...rc.connections];
      for (const conn of streams) conn.end();
      server?.closeIdleConnections();
      const timer = new Promise<void>((r) => setTimeout(r, graceMs).unref());
      await Promise.race([closed, timer]);
      server?.closeAllConnections();
      // Streams are detached from node:http (closeAllConnections does not see them): one that
      // has not finished writing what was queued by now is cut.
      for (const conn of streams) conn.socket.destroy();
      rc.presence.stop();
      // Streams' close handlers (which queue their presence leaves) run on the next turns.
      await new Promise((r) => setImmediate(r));
      await rc.presence.idle();
      await rc.streams.close();
      await broker.close();
    },
  };
}
