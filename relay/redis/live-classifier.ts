import { randomBytes } from "node:crypto";
import { envelopeIn, payloadObject, plainDataJson } from "../../protocol/envelope.js";
import { plainEnvelopeIn } from "../../protocol/plain-envelope.js";
import { comparePositions, parseMessageId, type Position, ZERO } from "../../protocol/position.js";
import type { Delivery } from "../broker/broker.js";
import { macMatches } from "./envelope-mac.js";

/**
 * Decides what each message on the relay's subscriber connection is, in arrival order.
 *
 * A log message is one the publish script sent: its `mac` verifies under the partition's
 * secret, and its log position is above every position this connection has received in that
 * partition. Anything else — a plain PUBLISH from another program, whatever it looks like, a
 * forged envelope, a re-published copy of a real one — is plain data, delivered live with
 * no position, so it can never move a cursor or hide a message. A plain payload in the
 * labelled form (protocol/plain-envelope.ts) sets its message's type and meta, nothing more.
 *
 * Redis sends the copies of one PUBLISH (one for the channel, then one per matching pattern)
 * back to back on a connection, since a PUBLISH is atomic. A message with the same channel and
 * payload as the one before it, by a route that publish has not used yet, is such a copy: it
 * gets the first copy's Delivery, the same object (the broker marks what it forwards of it
 * `again`, and the hub gives a client one copy per publish). A repeated route (or a
 * `message`, which Redis always sends first) starts a new publish.
 *
 * Nothing is allocated per copy: the current publish lives in fields, its routes in one Set
 * that is cleared for the next publish.
 */
export class LiveClassifier {
  /** Per partition, the envelope secret (loaded from Redis by the broker). */
  readonly secrets: (string | undefined)[];
  private readonly last: Position[];
  /** The publish being received (no `base`: none, the next message starts one). */
  private base?: Delivery;
  private channel = "";
  private payload = "";
  /** Routes the current publish has reached the connection by so far (undefined: the channel itself). */
  private readonly routes = new Set<string | undefined>();
  /** Plain ids are unique per process and say nothing about the relay's marker channel. */
  private readonly plainPrefix = randomBytes(6).toString("base64url");
  private plainSeq = 0;

  constructor(
    private readonly partitions: number,
    /** A well-formed tag did not verify: the secret may have changed (Redis lost its data). */
    private readonly onMismatch: () => void,
  ) {
    this.secrets = new Array(partitions).fill(undefined);
    this.last = new Array(partitions).fill(ZERO);
  }

  /**
   * One copy as Redis sent it: by the channel subscription (`route` undefined) or by one of
   * the relay's Redis patterns. Another copy of the previous publish gets the very object
   * its first copy got; a new publish, a new object.
   */
  classify(channel: string, route: string | undefined, payload: string): Delivery {
    if (this.base && route !== undefined && this.channel === channel && this.payload === payload && !this.routes.has(route)) {
      this.routes.add(route);
      return this.base;
    }
    const base = this.fresh(channel, payload);
    this.base = base;
    this.channel = channel;
    this.payload = payload;
    this.routes.clear();
    this.routes.add(route);
    return base;
  }

  /** Something else arrived on the connection (a marker, a drop): the next message is a new publish. */
  interrupt(): void {
    this.base = undefined;
  }

  /** A settle marker arrived: every log message of `partitions[i]` up to `ends[i]` has been received before it. */
  settledTo(partitions: readonly number[], ends: readonly Position[]): void {
    this.interrupt();
    partitions.forEach((p, i) => {
      const pos = ends[i];
      if (pos && p < this.partitions && comparePositions(pos, this.last[p]) > 0) this.last[p] = pos;
    });
  }

  private fresh(channel: string, payload: string): Delivery {
    // Parsed once: what is not taken for a log message reuses the object as plain data.
    const obj = payloadObject(payload);
    const env = obj && envelopeIn(obj, channel);
    const mid = env?.mac !== undefined ? parseMessageId(env.id) : undefined;
    if (env?.mac !== undefined && mid && mid.partition < this.partitions) {
      const p = mid.partition;
      const secret = this.secrets[p];
      if (secret === undefined || !macMatches(secret, env.id, channel, env.ts, env.mac)) {
        this.onMismatch();
      } else if (comparePositions(mid.pos, this.last[p]) > 0) {
        this.last[p] = mid.pos;
        return { channel, id: env.id, partition: p, pos: mid.pos, type: env.type, metaJson: env.metaJson, dataJson: env.dataJson, ts: env.ts };
      }
    }
    const id = `x-${this.plainPrefix}-${(this.plainSeq++).toString(36)}`;
    // A plain publisher's labelled form (`$fanout`) sets type and meta, never a position.
    const labelled = obj && plainEnvelopeIn(obj);
    if (labelled) return { channel, id, type: labelled.type, metaJson: labelled.metaJson, dataJson: labelled.dataJson, ts: Date.now() };
    return { channel, id, dataJson: obj ? JSON.stringify(obj) : plainDataJson(payload), ts: Date.now() };
  }
}
