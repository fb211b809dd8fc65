import { createHash } from "node:crypto";
import { notReplicated } from "../../protocol/errors.js";
import { ELSEWHERE, mergeScriptCalls, messagesInArgs, nodeScriptCall, PUBLISH_SCRIPT, splitNodeReply, splitScriptReply } from "../../protocol/publish-script.js";
import type { RedisClient } from "./redis-connection.js";
import type { PublishReplicas } from "./replicated-publish.js";

const SHA = createHash("sha1").update(PUBLISH_SCRIPT).digest("hex");
/** Messages per merged script call at most: a script blocks Redis while it runs. */
const MERGE_MESSAGES = 256;

interface Call {
  keys: string[];
  args: string[];
  /** The script's reply; `waitError` when the WAIT after it fell short (the call ran, but is not confirmed). */
  resolve: (reply: unknown, waitError?: Error) => void;
  reject: (err: unknown) => void;
}

/** One partition's requests of a turn as one script call, sent with other partitions' in a node call. */
interface Part {
  group: number;
  calls: Call[];
  merged: Call;
  messages: number;
}

/**
 * A whole node call that failed before its script ran (its routing key's slot moved, say): its
 * partitions go on their own. Anything else (the connection lost) fails them as it is.
 */
const NOT_RUN = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) |non local key|same slot/;

type Pipeline = ReturnType<RedisClient["pipeline"]>;

/**
 * Group commit: publish script calls made in the same event-loop turn (publishes that
 * arrived together on several connections) go to Redis as one script call per group (up to
 * MERGE_MESSAGES messages; more make several calls in one pipeline) — one write on the relay,
 * one read and one script run on Redis, one reply — instead of one of each per request. The
 * call is the script's grouped form (protocol/publish-script.ts): each request runs under
 * `pcall` and keeps its own result, idempotency and error, so a script error (a key of the
 * wrong type, say) fails only the request it happened in, all of that request's messages,
 * as when the request had its own call.
 *
 * Order: calls are sent in the order they were made, and a group's pipeline is written
 * before any later one on the same connection, so per channel (one partition, one group)
 * requests run and complete in arrival order.
 *
 * On Cluster a group is one partition (a script call's declared keys share a slot), but the
 * turn's partitions whose slots one master owns go to it as ONE call, the script's node form
 * (protocol/publish-script.ts): Redis pays per call and per reply, and with single publishes
 * a turn holds one or two requests per partition. The master is the one ioredis would send
 * the partition's keys to now (`nodeOf`, its slot map). A partition the master cannot serve
 * when the script runs (the slot moved and the map is stale, or it is migrating and keys are
 * gone) is answered ELSEWHERE with nothing of it written, and its requests go again on their
 * own, the per-partition call that ioredis redirects (MOVED, ASK, TRYAGAIN); a node call
 * refused as a whole before it ran (MOVED for its routing key, say) sends each partition so.
 * Per partition, such a second send waits for the partition's earlier sends, and a later
 * group of the partition sent alone waits for a node call of it still in flight (`tails`), so
 * a channel's requests are still logged in the order they were made; a partition group larger
 * than one call (over MERGE_MESSAGES) goes alone.
 *
 * With `FANOUT_PUBLISH_REPLICAS` one `WAIT <count> <timeoutMs>` ends the pipeline, on the same
 * connection to the same server: WAIT counts the replicas that have acknowledged this
 * connection's writes up to it, so it confirms (or not) every call of the group at once. On
 * Cluster a pipeline is routed by its keys (WAIT has none; a pipeline is one partition's or
 * one node call), so it runs on the node that ran the scripts. With
 * independent shards each shard's broker groups on its own connection. The scripts go as
 * EVALSHA, and as EVAL only when the server does not know them: ioredis's own NOSCRIPT
 * fallback would resend a script outside the pipeline, after the WAIT, which would then not
 * cover it. Fewer acknowledgements than asked fails each call with `not_replicated`: the
 * message IS in this server's log and was published live, but a failover now could lose it,
 * so the publisher retries with its idempotency id (and gets the first result back,
 * `duplicate: true`, if it survived). A script error (a MOVED mid-migration, a READONLY
 * mid-failover) fails its call as is: nothing was written by it and the caller answers 503.
 *
 * The group is flushed with `setImmediate`: after the poll phase has handed over every
 * request that arrived in this turn (a `nextTick` would run after each socket's callback and
 * group nothing). A group of one without replicas goes as a plain EVALSHA; a grouped call
 * that fails as a whole (Redis gone mid-way) fails every request in it with that error.
 */
export class GroupCommit {
  private readonly groups = new Map<number, Call[]>();
  private scheduled = false;
  /** Per partition, its last send whose outcome a later send must wait for (a node call's part that may have to go again). */
  private readonly tails = new Map<number, Promise<void>>();
  /** Node calls made, and parts of them sent again on their own (for tests). */
  readonly stats = { nodeCalls: 0, fallbacks: 0 };

  constructor(
    private readonly cmd: RedisClient,
    private readonly replicas: PublishReplicas,
    /** The single-call path (ioredis's defined command, EVALSHA with its own NOSCRIPT fallback). */
    private readonly single: (keys: string[], args: string[]) => Promise<unknown>,
    /** On Cluster: the master (`host:port`) the client sends a group's (partition's) keys to now; undefined elsewhere. */
    private readonly nodeOf?: (group: number) => string | undefined,
  ) {}

  /** Runs the publish script with these keys and args in group `group` (a partition on Cluster, 0 otherwise). */
  run(group: number, keys: string[], args: string[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let g = this.groups.get(group);
      if (!g) this.groups.set(group, (g = []));
      g.push({ keys, args, resolve: (reply, waitError) => (waitError ? reject(waitError) : resolve(reply)), reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const groups = [...this.groups];
    this.groups.clear();
    if (!this.nodeOf) {
      for (const [, calls] of groups) void this.send(calls);
      return;
    }
    // Cluster: the partitions of one node go as one call; a partition too big to be one part
    // (over MERGE_MESSAGES) or whose node is unknown goes on its own.
    const byNode = new Map<string, Part[]>();
    for (const [group, calls] of groups) {
      // This runs from setImmediate: a throw here would end the process, so it fails the
      // group's requests instead (their publishers get a 5xx and retry with their ids).
      let merged: Call[];
      let node: string | undefined;
      try {
        merged = merge(calls);
        node = merged.length === 1 ? this.nodeOf(group) : undefined;
      } catch (err) {
        for (const c of calls) c.reject(err);
        continue;
      }
      if (node === undefined) {
        this.sendAlone(group, calls);
        continue;
      }
      let parts = byNode.get(node);
      if (!parts) byNode.set(node, (parts = []));
      parts.push({ group, calls, merged: merged[0], messages: calls.reduce((n, c) => n + messagesInArgs(c.args), 0) });
    }
    for (const parts of byNode.values()) {
      let chunk: Part[] = [];
      let size = 0;
      for (const part of parts) {
        if (size > 0 && size + part.messages > MERGE_MESSAGES) {
          this.sendNode(chunk);
          chunk = [];
          size = 0;
        }
        chunk.push(part);
        size += part.messages;
      }
      if (chunk.length > 0) this.sendNode(chunk);
    }
  }

  /**
   * One partition's requests on their own (the per-partition path, which the Cluster client
   * redirects). After a node call of the same partition still in flight, whose part may yet
   * have to go this way: the partition's order.
   */
  private sendAlone(group: number, calls: Call[]): void {
    const tail = this.tails.get(group);
    if (!tail) {
      void this.send(calls);
      return;
    }
    this.setTail(
      group,
      tail.then(() => this.send(calls)),
    );
  }

  /**
   * Parts of several partitions on one node as one node call (a part alone goes as its own call,
   * unless a node call of its partition is in flight). A part the node answers ELSEWHERE for
   * (nothing of it written) is sent again on its own, once its partition's earlier sends have
   * settled, so a channel's requests are still logged in the order they were made.
   */
  private sendNode(parts: Part[]): void {
    if (parts.length === 1 && !this.tails.has(parts[0].group)) {
      void this.send(parts[0].calls);
      return;
    }
    // Built before any partition's tail is set: a throw leaves no tail that never settles.
    let script: ReturnType<typeof nodeScriptCall>;
    try {
      script = nodeScriptCall(parts.map((p) => p.merged));
    } catch (err) {
      for (const part of parts) part.merged.reject(err);
      return;
    }
    const outcome: ((elsewhere: boolean) => void)[] = parts.map((part) => {
      const prev = this.tails.get(part.group);
      let settle!: (elsewhere: boolean) => void;
      const elsewhere = new Promise<boolean>((r) => (settle = r));
      this.setTail(
        part.group,
        elsewhere.then(async (again) => {
          if (!again) return;
          this.stats.fallbacks++;
          await prev;
          await this.send(part.calls);
        }),
      );
      return settle;
    });
    this.stats.nodeCalls++;
    const call: Call = {
      ...script,
      resolve: (reply, waitError) => {
        let split: unknown[];
        try {
          split = splitNodeReply(parts.length, reply);
        } catch (err) {
          parts.forEach((p, i) => (p.merged.reject(err), outcome[i](false)));
          return;
        }
        split.forEach((r, i) => {
          if (r instanceof Error && ELSEWHERE.test(r.message)) return outcome[i](true);
          if (r instanceof Error) parts[i].merged.reject(r);
          else parts[i].merged.resolve(r, waitError);
          outcome[i](false);
        });
      },
      reject: (err) => {
        const again = NOT_RUN.test((err as Error)?.message ?? "");
        parts.forEach((p, i) => {
          if (!again) p.merged.reject(err);
          outcome[i](again);
        });
      },
    };
    void this.sendCalls([call]);
  }

  /** `p` is now the last send of `group`; forgotten once it settles, unless another came after. */
  private setTail(group: number, p: Promise<void>): void {
    const tail = p.catch(() => undefined);
    this.tails.set(group, tail);
    void tail.then(() => {
      if (this.tails.get(group) === tail) this.tails.delete(group);
    });
  }

  private async send(group: Call[]): Promise<void> {
    return this.sendCalls(merge(group));
  }

  private async sendCalls(calls: Call[]): Promise<void> {
    if (calls.length === 1 && this.replicas.count === 0) {
      const c = calls[0];
      return this.single(c.keys, c.args).then(c.resolve, c.reject);
    }
    try {
      const missing = await this.exec(calls, (p, c) => p.evalsha(SHA, c.keys.length, ...c.keys, ...c.args));
      // The server lost its scripts (restart, SCRIPT FLUSH): those calls again, with the body.
      if (missing.length > 0) await this.exec(missing, (p, c) => p.eval(PUBLISH_SCRIPT, c.keys.length, ...c.keys, ...c.args));
    } catch (err) {
      for (const c of calls) c.reject(err);
    }
  }

  /** One pipeline of `calls` (+ WAIT); settles each call but those answered NOSCRIPT, which it returns. */
  private async exec(calls: Call[], add: (p: Pipeline, c: Call) => void): Promise<Call[]> {
    const p = this.cmd.pipeline();
    for (const c of calls) add(p, c);
    if (this.replicas.count > 0) p.wait(this.replicas.count, this.replicas.timeoutMs);
    const out = await p.exec();
    const expected = calls.length + (this.replicas.count > 0 ? 1 : 0);
    if (!out || out.length !== expected) throw new Error("the publish pipeline was aborted");
    let waitError: Error | undefined;
    if (this.replicas.count > 0) {
      const [err, acked] = out[calls.length];
      const n = Number(acked);
      if (err) waitError = err;
      else if (!(n >= this.replicas.count)) {
        waitError = notReplicated(`published, but ${n} of ${this.replicas.count} replicas confirmed it within ${this.replicas.timeoutMs} ms; retry with the same id`);
      }
    }
    const missing: Call[] = [];
    calls.forEach((c, i) => {
      const [err, reply] = out[i];
      if (err && /NOSCRIPT/.test(err.message)) missing.push(c);
      else if (err) c.reject(err);
      else c.resolve(reply, waitError);
    });
    return missing;
  }
}

/**
 * The group's requests as few script calls: consecutive requests merged into one grouped call
 * (the script answers each request on its own) up to MERGE_MESSAGES messages; a request alone
 * stays as it is.
 */
function merge(calls: Call[]): Call[] {
  const out: Call[] = [];
  let run: Call[] = [];
  let size = 0;
  const close = () => {
    if (run.length === 1) out.push(run[0]);
    else if (run.length > 1) {
      const parts = run;
      const { keys, args } = mergeScriptCalls(parts);
      out.push({
        keys,
        args,
        resolve: (reply, waitError) => {
          let split: (unknown[] | Error)[];
          try {
            split = splitScriptReply(parts, reply);
          } catch (err) {
            for (const c of parts) c.reject(err);
            return;
          }
          split.forEach((r, i) => (r instanceof Error ? parts[i].reject(r) : parts[i].resolve(r, waitError)));
        },
        reject: (err) => parts.forEach((c) => c.reject(err)),
      });
    }
    run = [];
    size = 0;
  };
  for (const c of calls) {
    const n = messagesInArgs(c.args);
    if (size > 0 && size + n > MERGE_MESSAGES) close();
    run.push(c);
    size += n;
  }
  close();
  return out;
}
