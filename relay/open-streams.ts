import { randomUUID } from "node:crypto";
import { FanoutError } from "../protocol/errors.js";
import type { ControlBus, ControlReply } from "./control/control-bus.js";
import { OpenStream, unknownConnection, type SubscribedAck } from "./open-stream.js";
import type { RelayContext } from "./relay-context.js";
import { parseSubscriptionChange } from "./subscription-change.js";

/** How long a relay waits for the relay holding a stream to answer a forwarded change. */
const FORWARD_TIMEOUT_MS = 5000;
/** Between the owner relay's id and the random part of a connection id (not in relay ids). */
const SEPARATOR = "~";
const RELAY_ID = /^[A-Za-z0-9._:-]{1,64}$/;

interface ForwardedChange {
  op: "subscriptions";
  id: string;
  change: unknown;
  grantEndsAt?: number;
}

/**
 * This relay's open streams by connection id, and the way to change one's subscriptions from
 * any relay: a connection id starts with the id of the relay holding it, so a relay that gets
 * a change for a stream it does not hold forwards it to the owner over the control bus.
 */
export class OpenStreams {
  private readonly byId = new Map<string, OpenStream>();

  constructor(
    private readonly relayId: string,
    private readonly bus: ControlBus | undefined,
  ) {}

  /** A fresh connection id for a stream on this relay. */
  newId(): string {
    return `${this.relayId}${SEPARATOR}${randomUUID()}`;
  }

  add(s: OpenStream): void {
    this.byId.set(s.id, s);
  }

  delete(id: string): void {
    this.byId.delete(id);
  }

  /** Serves changes other relays forward here. */
  async start(rc: RelayContext): Promise<void> {
    await this.bus?.start(async (body) => {
      const m = body as ForwardedChange;
      if (m?.op !== "subscriptions" || typeof m.id !== "string") return { status: 400, body: { error: { code: "bad_request", message: "unknown control request" } } };
      try {
        return { status: 200, body: await this.applyHere(rc, m.id, m.change, typeof m.grantEndsAt === "number" ? m.grantEndsAt : undefined) };
      } catch (err) {
        if (err instanceof FanoutError) return { status: err.status, body: err.toJSON() };
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    await this.bus?.close();
  }

  /**
   * Applies a change (the request body, already validated and its added names authorized by
   * the caller) to the stream, wherever in the deployment it is open.
   */
  async apply(rc: RelayContext, id: string, change: unknown, grantEndsAt: number | undefined): Promise<SubscribedAck> {
    if (this.byId.has(id)) return this.applyHere(rc, id, change, grantEndsAt);
    const cut = id.lastIndexOf(SEPARATOR);
    const owner = cut > 0 ? id.slice(0, cut) : undefined;
    // Relay ids are FANOUT_RELAY_ID's characters: anything else names no relay (and no channel is built from it).
    if (!owner || !RELAY_ID.test(owner) || owner === this.relayId || !this.bus) throw unknownConnection();
    rc.metrics.subscriptionChanges.inc({ where: "forwarded" });
    const reply = await this.bus.request(owner, { op: "subscriptions", id, change, grantEndsAt } satisfies ForwardedChange, FORWARD_TIMEOUT_MS);
    if (reply === "absent") throw unknownConnection();
    if (reply === "timeout") throw new FanoutError(503, "connection_unreachable", "the relay holding this connection did not answer; retry shortly", { "Retry-After": "1" });
    return unwrap(reply);
  }

  private async applyHere(rc: RelayContext, id: string, raw: unknown, grantEndsAt: number | undefined): Promise<SubscribedAck> {
    const stream = this.byId.get(id);
    if (!stream) throw unknownConnection();
    const change = parseSubscriptionChange(raw, { maxSubscriptions: rc.config.maxSubscriptionsPerConnection, partitions: rc.broker.partitions, logPrefix: rc.config.log.prefix });
    if (!stream.secretMatches(change.secret)) throw new FanoutError(403, "bad_connection_secret", "this is not the connection's secret (the `secret` of its ready event)");
    rc.metrics.subscriptionChanges.inc({ where: "local" });
    return stream.change(rc, change, grantEndsAt);
  }
}

/** The owner's answer as this relay's own: the ack, or the same refusal. */
function unwrap(reply: ControlReply): SubscribedAck {
  if (reply.status === 200) return reply.body as SubscribedAck;
  const e = (reply.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const status = [400, 403, 404, 409, 413, 429, 503].includes(reply.status) ? (reply.status as 400) : 503;
  throw new FanoutError(status, typeof e?.code === "string" ? e.code : "internal", typeof e?.message === "string" ? e.message : "the relay holding this connection failed");
}
