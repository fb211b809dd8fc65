import { randomBytes } from "node:crypto";

/**
 * A relay id for the fleet view and the `relay` label on /metrics: random, fixed for the
 * relay's life. /metrics is open to any caller, so the id must not name the host; the fleet
 * view (operators only) shows the host and pid beside it. FANOUT_RELAY_ID overrides it (e.g.
 * with the pod name), knowing it then appears on /metrics.
 */
export function defaultRelayId(): string {
  return `r-${randomBytes(4).toString("hex")}`;
}
