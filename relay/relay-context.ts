import type { RelayConfig } from "./config.js";
import type { Broker, MessageLog } from "./broker/broker.js";
import type { Hub } from "./hub.js";
import type { RelayMetrics } from "./metrics.js";
import type { FlushScheduler } from "./sse/flush-scheduler.js";
import type { QueueBudget } from "./sse/queue-budget.js";
import type { SseConnection } from "./sse/sse-connection.js";
import type { RelayAuth } from "./auth/relay-auth.js";
import type { ConnectionLimits } from "./connection-limits.js";
import type { OpenStreams } from "./open-streams.js";
import type { PresenceTracker } from "./presence/presence-tracker.js";

/** What the relay's routes share: built once in `createRelay`. */
export interface RelayContext {
  config: RelayConfig;
  broker: Broker;
  log: MessageLog;
  hub: Hub;
  metrics: RelayMetrics;
  scheduler: FlushScheduler;
  /** Bytes held for all SSE clients, against FANOUT_QUEUE_BUDGET_BYTES. */
  queues: QueueBudget;
  auth: RelayAuth;
  limits: ConnectionLimits;
  connections: Set<SseConnection>;
  /** Open streams by connection id, for dynamic subscriptions (routed to the owner relay). */
  streams: OpenStreams;
  /** Presence on FANOUT_PRESENCE_CHANNELS (disabled when that is empty). */
  presence: PresenceTracker;
  draining: boolean;
  startedAt: number;
}
