import { Redis } from "@upstash/redis/cloudflare";
import { CircuitBreaker } from "./circuit-breaker.js";
import type { FunctionsConfig, UpstashEndpoint } from "./config.js";

/**
 * An Upstash REST client for the fanout's own commands: values come back as the raw strings
 * Redis holds (no JSON parsing of cache keys or ids), no client-side retries (the breaker
 * decides when to try again), and every request bounded by FANOUT_REDIS_TIMEOUT_MS. The
 * signal is a function so a timeout surfaces as an error rather than a fake result.
 */
export function upstashClient(endpoint: UpstashEndpoint, config: FunctionsConfig): Redis {
  return new Redis({
    url: endpoint.url,
    token: endpoint.token,
    automaticDeserialization: false,
    enableAutoPipelining: false,
    enableTelemetry: false,
    // `retry: false` still makes a second attempt at once in @upstash/redis 1.39 (its loop
    // runs attempts + 1 times), doubling the requests to a Redis that is already failing.
    retry: { retries: 0 },
    signal: () => AbortSignal.timeout(config.redisTimeoutMs),
  });
}

const breakers = new Map<string, CircuitBreaker>();

/** One breaker per Redis endpoint for the life of the isolate. */
export function breakerFor(endpoint: UpstashEndpoint, config: FunctionsConfig): CircuitBreaker {
  let b = breakers.get(endpoint.url);
  if (!b) {
    b = new CircuitBreaker(config.breakerThreshold, config.breakerCooldownMs);
    breakers.set(endpoint.url, b);
  }
  return b;
}
