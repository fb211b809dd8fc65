import { randomBytes } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { reservedPrefix } from "../../protocol/reserved-channels.js";
import type { ControlBus, ControlReply } from "../control/control-bus.js";
import { connectSubscriber, type RedisClient } from "./redis-connection.js";

/** A request or a reply on a relay's control channel. */
type Envelope = { to: "request"; token: string; from: string; body: unknown } | { to: "reply"; token: string; reply: ControlReply };

/**
 * Relay-to-relay requests over Redis Pub/Sub: each relay listens on its own reserved channel
 * `<prefix>:relay:ctl:<relay id>` (no client can subscribe or publish there) on a connection
 * of its own, and answers on the asker's. Nothing is stored: a relay that is gone simply does
 * not answer (on a single Redis, `PUBSUB NUMSUB` counting no listener says so at once).
 */
export class RedisControlBus implements ControlBus {
  private readonly sub: Redis;
  private readonly waiters = new Map<string, (r: ControlReply) => void>();

  constructor(
    url: string,
    private readonly cmd: RedisClient,
    private readonly prefix: string,
    private readonly relayId: string,
  ) {
    const retryStrategy = (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000);
    this.sub = connectSubscriber(url, { enableOfflineQueue: true, maxRetriesPerRequest: null, retryStrategy, lazyConnect: true });
    this.sub.on("error", () => undefined /* requests to this relay time out meanwhile */);
  }

  private channelOf(relayId: string): string {
    return `${reservedPrefix(this.prefix)}ctl:${relayId}`;
  }

  async start(handle: (body: unknown) => Promise<ControlReply>): Promise<void> {
    this.sub.on("message", (_channel: string, payload: string) => {
      let m: Envelope;
      try {
        m = JSON.parse(payload) as Envelope;
      } catch {
        return; // not ours
      }
      if (m?.to === "reply") {
        const w = this.waiters.get(String(m.token));
        if (w) w(m.reply);
        return;
      }
      if (m?.to !== "request" || typeof m.from !== "string") return;
      void handle(m.body)
        .catch((): ControlReply => ({ status: 500, body: { error: { code: "internal", message: "internal error" } } }))
        .then((reply) => this.cmd.publish(this.channelOf(m.from), JSON.stringify({ to: "reply", token: m.token, reply } satisfies Envelope)))
        .catch(() => undefined /* Redis down: the asker times out */);
    });
    await this.sub.connect().catch(() => undefined);
    // Awaited only when connected: with Redis down at start-up the command waits in the offline
    // queue and the relay starts anyway (it answers 503 meanwhile); ioredis resubscribes after reconnects.
    const subscribed = this.sub.subscribe(this.channelOf(this.relayId)).catch(() => undefined);
    if (this.sub.status === "ready") await subscribed;
  }

  async request(relayId: string, body: unknown, timeoutMs: number): Promise<ControlReply | "absent" | "timeout"> {
    const token = randomBytes(12).toString("base64url");
    const answered = new Promise<ControlReply | "timeout">((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(token);
        resolve("timeout");
      }, timeoutMs);
      timer.unref();
      this.waiters.set(token, (r) => {
        clearTimeout(timer);
        this.waiters.delete(token);
        resolve(r);
      });
    });
    try {
      const channel = this.channelOf(relayId);
      // Whether the relay listens: PUBLISH's count would include pattern subscribers (a relay
      // holding a client's `*`), NUMSUB counts channel subscribers only. On Cluster it is the
      // answering node's count, not a proof of absence: there the timeout decides.
      if ((this.cmd as Cluster).isCluster !== true) {
        const numsub = (await this.cmd.call("PUBSUB", "NUMSUB", channel)) as [string, number];
        if (Number(numsub[1]) === 0) {
          this.waiters.get(token)?.({ status: 0, body: undefined });
          return "absent";
        }
      }
      await this.cmd.publish(channel, JSON.stringify({ to: "request", token, from: this.relayId, body } satisfies Envelope));
    } catch {
      this.waiters.get(token)?.({ status: 0, body: undefined });
      return "timeout";
    }
    return answered;
  }

  async close(): Promise<void> {
    this.sub.disconnect();
  }
}
