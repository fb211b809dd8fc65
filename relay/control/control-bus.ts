/** A relay's answer to a request another relay forwarded to it: an HTTP status and JSON body. */
export interface ControlReply {
  status: number;
  body: unknown;
}

/**
 * Requests between relays of one deployment, addressed by relay id: how a call that reaches
 * a relay other than the one holding a stream (behind a load balancer) gets to its owner.
 * Only with Redis; the embedded broker is one relay, so it has none.
 */
export interface ControlBus {
  /** Serves requests addressed to this relay. */
  start(handle: (body: unknown) => Promise<ControlReply>): Promise<void>;
  /** "absent": no relay of that id is listening; "timeout": no answer within `timeoutMs`. */
  request(relayId: string, body: unknown, timeoutMs: number): Promise<ControlReply | "absent" | "timeout">;
  close(): Promise<void>;
}
