/**
 * A refusal with a machine-readable code. Every input path throws these; one handler per
 * runtime maps them to `{ "error": { "code", "message" } }` with the status (never a 500
 * for bad input).
 */
export class FanoutError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 429 | 503,
    readonly code: string,
    message: string,
    /** Extra response headers, e.g. Retry-After on 429/503. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "FanoutError";
  }

  toJSON(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export function unavailable(message: string, retryAfterSeconds = 1): FanoutError {
  return new FanoutError(503, "broker_unavailable", message, { "Retry-After": String(retryAfterSeconds) });
}

/**
 * The publish script ran (the message is in the master's log and was published live) but
 * fewer replicas than `FANOUT_PUBLISH_REPLICAS` confirmed it in time: a failover now could
 * lose it. "Maybe published": retry with the same idempotency id.
 */
export function notReplicated(message: string, retryAfterSeconds = 1): FanoutError {
  return new FanoutError(503, "not_replicated", message, { "Retry-After": String(retryAfterSeconds) });
}
