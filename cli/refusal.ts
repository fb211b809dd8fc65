import { FanoutClientError } from "../client/errors.js";

/** One line for a relay's refusal or an unreachable relay: the machine-readable code first. */
export function describeFailure(err: unknown): string {
  if (err instanceof FanoutClientError) {
    const status = err.status ? ` (HTTP ${err.status})` : "";
    return `error: ${err.code}${status}: ${err.message}${rootCause(err)}`;
  }
  return `error: ${(err as Error)?.message ?? String(err)}`;
}

/** fetch says only "fetch failed"; the reason (ECONNREFUSED, a DNS failure) is its cause's cause. */
function rootCause(err: Error): string {
  let e: unknown = err.cause;
  let last: Error | undefined;
  for (let depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) last = e;
  return last && last !== err.cause ? ` (${last.message})` : "";
}
