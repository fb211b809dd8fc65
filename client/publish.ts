import { FanoutClientError, errorFromResponse, readJsonAnswer } from "./errors.js";

export interface PublishMessage<T = unknown> {
  channel: string;
  data: T;
  /** Becomes the SSE `event:` name. */
  type?: string;
  /** Idempotency id: the same id on the same channel within the dedupe window publishes once. */
  id?: string;
  /**
   * Envelope metadata delivered with the message: at most 16 keys (letters, digits,
   * `_ . : -`, up to 64 characters) with string values, 2 KiB in all; `traceparent` must be
   * a W3C one. Otherwise 400 `invalid_meta`.
   */
  meta?: Record<string, string>;
}

/**
 * What the relay answers per message (`receivers`: what Redis PUBLISH reported — relay
 * subscriptions, not browsers). Declared here, not imported from the server's code, so the
 * package stands alone.
 */
export interface PublishResult {
  id: string;
  channel: string;
  receivers: number;
  duplicate: boolean;
}

export interface BatchPublishResult {
  results: PublishResult[];
}

export interface PublishOptions {
  /** Publisher key or JWT, sent as `Authorization: Bearer <key>`. */
  key?: string;
  headers?: Record<string, string>;
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

/**
 * `POST <baseUrl>/v1/publish`. One message returns its result; an array is published as one
 * all-or-nothing batch and returns `{ results }`. A refusal throws FanoutClientError with the
 * relay's `code` and HTTP `status` (and `retryAfterMs` on 429/503); no response at all
 * throws one with code `network_error`.
 */
export function publish<T>(baseUrl: string | URL, message: PublishMessage<T>, opts?: PublishOptions): Promise<PublishResult>;
export function publish<T>(baseUrl: string | URL, messages: PublishMessage<T>[], opts?: PublishOptions): Promise<BatchPublishResult>;
export function publish<T>(baseUrl: string | URL, body: PublishMessage<T> | PublishMessage<T>[], opts: PublishOptions = {}): Promise<PublishResult | BatchPublishResult> {
  return postJson(endpoint(baseUrl, "v1/publish"), Array.isArray(body) ? { messages: body } : body, opts);
}

/** `<base>/<path>`, keeping any path prefix the base has (a relay behind `/fanout/`). */
export function endpoint(baseUrl: string | URL, path: string): URL {
  const base = new URL(baseUrl);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  return new URL(path, base);
}

/** POSTs JSON to a relay route and returns its JSON answer, or throws FanoutClientError. */
export async function postJson<R>(url: URL, body: unknown, opts: PublishOptions = {}): Promise<R> {
  const headers: Record<string, string> = { "Content-Type": "application/json", ...opts.headers };
  if (opts.key !== undefined) headers.Authorization = `Bearer ${opts.key}`;
  const doFetch = opts.fetch ?? globalThis.fetch;
  let res: Response;
  try {
    res = await doFetch(url, { method: "POST", headers, body: JSON.stringify(body), signal: opts.signal });
  } catch (err) {
    throw new FanoutClientError("network_error", `POST ${url.pathname} failed: ${(err as Error).message}`, { cause: err });
  }
  if (!res.ok) throw await errorFromResponse(res);
  return readJsonAnswer<R>(res, `POST ${url.pathname}`);
}
