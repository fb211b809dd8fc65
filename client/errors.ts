/**
 * A refusal or failure with the machine-readable `code` of the relay's
 * `{ "error": { "code", "message" } }` body (e.g. `invalid_channel`, `unauthorized`,
 * `forbidden`, `rate_limited`), or one of the client's own codes: `network_error` (no HTTP
 * response), `http_<status>` (a response without that body), `not_event_stream` (a 200 that
 * is not `text/event-stream`), `invalid_response` (a 2xx whose body is not the JSON the route
 * answers: a proxy's page, say), `invalid_envelope`, `handler_error`, `credential_error`
 * (`getToken`/`getTicket` threw). `token_expired` also comes from the stream's `expired` event.
 */
export class FanoutClientError extends Error {
  override readonly name = "FanoutClientError";
  readonly code: string;
  /** HTTP status, or 0 when there was no response. */
  readonly status: number;
  /** From `Retry-After` on 429/503, in milliseconds. */
  readonly retryAfterMs?: number;

  constructor(code: string, message: string, opts: { status?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.status = opts.status ?? 0;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
  }
}

/** Reads a non-2xx response into a FanoutClientError, whatever its body holds. */
export async function errorFromResponse(res: Response, now = Date.now()): Promise<FanoutClientError> {
  const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"), now);
  let text = "";
  try {
    text = await res.text();
  } catch {
    // The body is only a better message; the status alone is still an answer.
  }
  let code = `http_${res.status}`;
  let message = text.slice(0, 200) || res.statusText || `HTTP ${res.status}`;
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body?.error?.code === "string") code = body.error.code;
    if (typeof body?.error?.message === "string") message = body.error.message;
  } catch {
    // Not our JSON (a proxy's HTML error page): keep the generic code.
  }
  return new FanoutClientError(code, message, { status: res.status, retryAfterMs });
}

/** The JSON of a 2xx answer, or FanoutClientError `invalid_response` when its body is not JSON. */
export async function readJsonAnswer<R>(res: Response, what: string): Promise<R> {
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw new FanoutClientError("network_error", `${what}: the answer broke off: ${(err as Error).message}`, { status: res.status, cause: err });
  }
  try {
    return JSON.parse(text) as R;
  } catch (err) {
    throw new FanoutClientError("invalid_response", `${what}: the ${res.status} answer is not JSON: ${JSON.stringify(text.slice(0, 100))}`, { status: res.status, cause: err });
  }
}

/** `Retry-After` as delay-seconds or an HTTP-date, in milliseconds (undefined when absent or unreadable). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^[0-9]+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
