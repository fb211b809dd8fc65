import type { PublishMessage, PublishResult } from "./publish-request.js";
import { idempotencyKey, partitionOf, streamKey } from "./partition.js";
import { checkPublishable } from "./reserved-channels.js";
import { firehoseChannel, patternFlagKey, shardChannelPrefix } from "./shard-channels.js";

/**
 * Appends each message to its partition's stream and publishes it, in one atomic script, so
 * a message's id and its log position are one value and no reader sees one without the
 * other. Also the idempotency check. Used by the relay (ioredis EVALSHA) and by the edge
 * functions (Upstash REST EVAL): one definition of what a publish is.
 *
 * KEYS: per message, its stream key, its idempotency key and its partition's MAC key; in
 *       the sharded modes, then the partition's pattern flag key.
 * ARGV: maxlen, ttl ms (0 = none), dedupe seconds, a fresh random secret (used only if the
 *       partition has none yet), the Pub/Sub mode, the shard channel prefix and the firehose
 *       channel ("" in classic mode), then per message:
 *       partition, channel, type ("" = none), data JSON, idempotency id ("" = none),
 *       meta JSON ("" = none).
 * Stream entry fields: `c` channel, `d` data, `ts`, and `t` type, `m` meta when present.
 * Returns per message {duplicate 0/1, id, receivers}.
 *
 * Grouped (the relay's group commit, mergeScriptCalls): one more ARGV at the end, the message
 * counts of the requests in the call ("2,1,1"). Each request then runs under `pcall`: one that
 * fails (a key of the wrong type, say) gets an error reply for each of its messages and the
 * next request runs, so merging requests does not widen a failure (without the counts, an
 * error fails the whole call, as a script error does).
 *
 * Node form (the relay's group commit on Cluster, nodeScriptCall): ARGV[1] is `node`, then per
 * partition its own call (key count, arg count, keys, args, plain or grouped); KEYS holds only
 * the first call's first key, which routes the call. A script may use undeclared keys of any
 * slot its node owns; each partition's keys are checked first in one MGET, which fails as a
 * call with those keys declared would (the slot moved: non local key; migrating with keys
 * gone: TRYAGAIN/ASK), and that partition then answers `ELSEWHERE …` with nothing written.
 * The same MGET reads the partition's secret and pattern flag, and one TIME serves the whole
 * call. The edge functions never use it.
 *
 * Modes: `classic` PUBLISHes on the channel (Redis, Upstash, Cluster's broadcast);
 * `sharded` (Redis Cluster ≥ 7, one partition per call) SPUBLISHes on the partition's shard
 * channel `{<tag>}:c:<channel>`, and on its firehose `{<tag>}:all` while the pattern flag key
 * exists (some relay holds a pattern); `both` does both. Channel names come in ARGV, never
 * KEYS: Cluster checks only KEYS against the slot (a shard channel in KEYS would get TRYAGAIN
 * during a migration) and the shard channels carry the partition's tag anyway.
 *
 * The PUBLISH payload is the envelope JSON plus `"mac"`: a keyed hash of the id, channel and
 * ts under the partition's secret, nested (sha1(k .. sha1(k .. m))) so it cannot be extended.
 * The secret lives in Redis beside the log, in the partition's slot; a program that may only
 * PUBLISH cannot read it, so it cannot make a payload the relays take for a log message
 * (relay/redis/envelope-mac.ts checks the tag). Plain Redis subscribers see the envelope
 * with `mac`; SSE clients never do (their frames are rebuilt by protocol/envelope.ts).
 */
export const PUBLISH_SCRIPT = `
-- The call's clock, read once: milliseconds as a number and as text (formatting a float was
-- the largest single cost the node form paid per partition when each partition read its own).
local function clock()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  return now, string.format('%.0f', now)
end
-- The logs a call appended to (log key -> its age limit in ms), trimmed by age once each at
-- the end rather than after every message: one threshold per limit for the whole call, and a
-- command fewer per message. Housekeeping: a trim that fails never fails the publishes
-- already written (the next call trims again).
local function trim(trims, now)
  local minids = {}
  for skey, ttl in pairs(trims) do
    local minid = minids[ttl]
    if not minid then minid = string.format('%.0f', now - ttl); minids[ttl] = minid end
    pcall(redis.call, 'XTRIM', skey, 'MINID', '~', minid)
  end
end
-- One call's keys and args: KEYS[ko + 1 …] and ARGV[ao + 1 … ao + nargs] (the node form below
-- runs it once per partition, on slices of its ARGV, without copying them). \`known\`, from the
-- node form only, is shared by the call's partitions: its clock, its secrets and logs to trim
-- (the node form trims once, at the end), and what the partition's key check already read
-- (its secret, its pattern flag), so that a partition costs no TIME, GET or EXISTS of its own.
local function publish(KEYS, ko, ARGV, ao, nargs, known)
local maxlen = ARGV[ao + 1]
local ttl = tonumber(ARGV[ao + 2])
local dedupe = ARGV[ao + 3]
local fresh = ARGV[ao + 4]
local mode, sprefix, firehose = ARGV[ao + 5], ARGV[ao + 6], ARGV[ao + 7]
local now, nows, secrets, trims
if known then now, nows, secrets, trims = known.now, known.nows, known.secrets, known.trims
else
  now, nows = clock()
  secrets, trims = {}, {}
end
local out = {}
local grouped = (nargs - 7) % 6 == 1
local n = (nargs - 7 - (grouped and 1 or 0)) / 6
local fire = false
if known then
  fire = known.fire
elseif mode ~= 'classic' then fire = redis.call('EXISTS', KEYS[ko + 3 * n + 1]) == 1 end
local function one(i)
  local a = ao + 7 + (i - 1) * 6
  local part, ch, ty, data, idem, meta = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
  local skey, ikey, mkey = KEYS[ko + 3 * i - 2], KEYS[ko + 3 * i - 1], KEYS[ko + 3 * i]
  local prev = false
  if idem ~= '' then prev = redis.call('GET', ikey) end
  if prev then
    -- Written again, unchanged (same value, same expiry), so that this run is a write: a WAIT
    -- after it (FANOUT_PUBLISH_REPLICAS) then covers the first publish too, which another
    -- connection may have made and which may not be replicated yet.
    redis.call('SET', ikey, prev, 'KEEPTTL')
    local sep = string.find(prev, '|', 1, true)
    out[i] = {1, string.sub(prev, 1, sep - 1), tonumber(string.sub(prev, sep + 1))}
  else
    local f = {'c', ch, 'd', data, 'ts', nows}
    if ty ~= '' then f[#f + 1] = 't'; f[#f + 1] = ty end
    if meta ~= '' then f[#f + 1] = 'm'; f[#f + 1] = meta end
    local sid = redis.call('XADD', skey, 'MAXLEN', '~', maxlen, '*', unpack(f))
    if ttl > 0 then trims[skey] = ttl end
    local id = part .. '-' .. sid
    local env = '{"id":"' .. id .. '","channel":' .. cjson.encode(ch)
    if ty ~= '' then env = env .. ',"type":' .. cjson.encode(ty) end
    if meta ~= '' then env = env .. ',"meta":' .. meta end
    local secret = secrets[mkey]
    if not secret then
      secret = redis.call('GET', mkey)
      if not secret then
        redis.call('SET', mkey, fresh)
        secret = fresh
      end
      secrets[mkey] = secret
    end
    local mac = redis.sha1hex(secret .. redis.sha1hex(secret .. id .. '\\0' .. ch .. '\\0' .. nows))
    env = env .. ',"data":' .. data .. ',"ts":' .. nows .. ',"mac":"' .. mac .. '"}'
    local r = 0
    if mode ~= 'sharded' then r = redis.call('PUBLISH', ch, env) end
    if mode ~= 'classic' then
      r = r + redis.call('SPUBLISH', sprefix .. ch, env)
      if fire then r = r + redis.call('SPUBLISH', firehose, env) end
    end
    if idem ~= '' then redis.call('SET', ikey, id .. '|' .. r, 'EX', dedupe) end
    out[i] = {0, id, r}
  end
end
if not grouped then
  for i = 1, n do one(i) end
  if not known then trim(trims, now) end
  return out
end
-- Several requests in one call (the relay's group commit): the last ARGV is their message
-- counts. A request that fails stops there and answers an error per message; the others go on.
local at = 0
for c in string.gmatch(ARGV[ao + nargs], '%d+') do
  local from, to = at + 1, at + tonumber(c)
  local ok, e = pcall(function() for i = from, to do one(i) end end)
  if not ok then
    local msg = type(e) == 'table' and e.err or tostring(e)
    for i = from, to do out[i] = {err = msg} end
  end
  at = to
end
if not known then trim(trims, now) end
return out
end
if ARGV[1] ~= 'node' then return publish(KEYS, 0, ARGV, 0, #ARGV) end
-- Node form (the relay's group commit on Cluster): several partitions' calls in one, each
-- given as its key count, arg count, keys and args; KEYS[1] only routes the call. Every
-- partition's keys are first checked in one multi-key command, as Cluster checks a call's
-- declared keys: a partition this node cannot serve now (slot moved or migrating) answers
-- ELSEWHERE and nothing of it is written, so the caller can send it on its own.
-- The keys a call will touch: its log and secret keys (one partition's: the same for every
-- message, so listed once), the idempotency keys of messages that have an id (the others are
-- never read), and its flag key last. A key listed twice (two messages with one id) is
-- harmless to MGET, so there is no table of keys seen: this runs for every partition of every
-- call. The check is an MGET, not an EXISTS, because its reply is of use: the secret (2nd)
-- and the pattern flag (last), which the partition would otherwise read with a command each
-- (MGET answers nil for the log, a stream, rather than failing). On a Cluster node every
-- command a script runs pays the slot check: with single publishes a partition holds one
-- message, and these reads were 3 of its 7 commands.
local function touched(ko, nk, ao, na)
  local m = math.floor((na - 7) / 6)
  local out = {ARGV[ko + 1], ARGV[ko + 3]}
  for i = 1, m do
    if ARGV[ao + 7 + (i - 1) * 6 + 5] ~= '' then out[#out + 1] = ARGV[ko + 3 * i - 1] end
  end
  if nk > 3 * m then out[#out + 1] = ARGV[ko + 3 * m + 1] end
  return out
end
local now, nows = clock()
local known = {now = now, nows = nows, secrets = {}, trims = {}}
local out = {}
local at = 2
while at <= #ARGV do
  local nk, na = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  local ko, ao = at + 1, at + 1 + nk
  at = at + 2 + nk + na
  local keys = touched(ko, nk, ao, na)
  local ok, r = pcall(redis.call, 'MGET', unpack(keys))
  if not ok then
    out[#out + 1] = {err = 'ELSEWHERE ' .. (type(r) == 'table' and r.err or tostring(r))}
  else
    if r[2] then known.secrets[ARGV[ko + 3]] = r[2] end
    known.fire = nk > 3 * math.floor((na - 7) / 6) and r[#keys] ~= false
    ok, r = pcall(publish, ARGV, ko, ARGV, ao, na, known)
    if ok then out[#out + 1] = r else out[#out + 1] = {err = type(r) == 'table' and r.err or tostring(r)} end
  end
end
trim(known.trims, now)
return out
`;

export interface LogSettings {
  prefix: string;
  partitions: number;
  /** Entries kept per partition (approximate, as Redis trims whole nodes). */
  maxLen: number;
  /** Age limit in ms; 0 keeps entries until maxLen pushes them out. */
  ttlMs: number;
  /** How long an idempotency id is remembered, in seconds. */
  dedupeSeconds: number;
  /** Hash tag per partition; default `<prefix>:<p>` (sharded Pub/Sub uses balanced tags, protocol/cluster-tags.ts). */
  tags?: readonly string[];
  /** How the publish script publishes; default `classic`. */
  pubsub?: PubsubMode;
}

/** `classic`: PUBLISH; `sharded`: SPUBLISH to shard channels (Cluster); `both`: sharded plus the classic PUBLISH for plain subscribers. */
export type PubsubMode = "classic" | "sharded" | "both";

/** The hash tag of a partition's keys and shard channels. */
/**
 * Messages in one ungrouped call's ARGV: seven leading arguments (maxlen, ttl, dedupe, fresh,
 * mode, shard prefix, firehose), then six per message, as the script above reads them.
 */
export function messagesInArgs(args: readonly string[]): number {
  return (args.length - 7) / 6;
}

export function partitionTag(s: Pick<LogSettings, "prefix" | "tags">, partition: number): string {
  return s.tags?.[partition] ?? `${s.prefix}:${partition}`;
}

/** Where a partition's envelope secret is kept: in the partition's Cluster slot. */
export function macKey(prefix: string, partition: number, tag = `${prefix}:${partition}`): string {
  return `{${tag}}:mac`;
}

/** 160 random bits as hex, from the platform's CSPRNG (Node and Workers alike). */
export function randomSecret(): string {
  const b = new Uint8Array(20);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * The secret a publish offers for a partition that has none yet (ARGV[4]): one per process
 * (per isolate at the edge), made on first use instead of per publish (it was 7 % of a
 * publish's CPU). It is used only when a partition's MAC key is missing (a Redis that lost
 * its data; relays create the keys at start), and then stored in that partition's key,
 * which every relay and publisher reads from then on; partitions created by the same process
 * may share it, which gives nothing away: the MAC covers the message id, which names its
 * partition, and whoever can read one partition's key can read them all.
 */
let candidateSecret: string | undefined;

export function publishScriptArgs(messages: PublishMessage[], s: LogSettings): { keys: string[]; args: string[] } {
  checkPublishable(messages, s.prefix);
  const keys: string[] = [];
  const mode = s.pubsub ?? "classic";
  const args: string[] = [String(s.maxLen), String(s.ttlMs), String(s.dedupeSeconds), (candidateSecret ??= randomSecret()), mode, "", ""];
  let tag: string | undefined;
  for (const m of messages) {
    const p = partitionOf(m.channel, s.partitions);
    const t = partitionTag(s, p);
    // SPUBLISH must run on the shard channel's slot: one partition per call.
    if (mode !== "classic" && tag !== undefined && t !== tag) throw new Error("a sharded publish script call holds one partition");
    tag = t;
    keys.push(streamKey(s.prefix, p, t), idempotencyKey(s.prefix, p, m.channel, m.id ?? "", t), macKey(s.prefix, p, t));
    args.push(String(p), m.channel, m.type ?? "", m.data, m.id ?? "", m.meta ?? "");
  }
  if (mode !== "classic" && tag !== undefined) {
    keys.push(patternFlagKey(tag));
    args[5] = shardChannelPrefix(tag);
    args[6] = firehoseChannel(tag);
  }
  return { keys, args };
}

export function publishScriptResults(messages: PublishMessage[], reply: unknown): PublishResult[] {
  if (!Array.isArray(reply) || reply.length !== messages.length) {
    throw new Error(`unexpected publish script reply: ${JSON.stringify(reply)?.slice(0, 200)}`);
  }
  return reply.map((r, i) => {
    const [dup, id, receivers] = r as [number, string, number];
    return { id: String(id), channel: messages[i].channel, receivers: Number(receivers), duplicate: Number(dup) === 1 };
  });
}

/** A script call's keys and args, as publishScriptArgs makes them. */
export interface ScriptCall {
  keys: string[];
  args: string[];
}

/**
 * Several requests' script calls as one grouped call (see the script): the header from the
 * first, every call's messages in order, the counts last. The calls must share the header (the
 * same settings) and, in the sharded modes, the partition (the pattern flag key is kept once).
 */
export function mergeScriptCalls(calls: readonly ScriptCall[]): ScriptCall {
  const keys: string[] = [];
  const args = calls[0].args.slice(0, 7);
  const counts: number[] = [];
  for (const c of calls) {
    const n = messagesInArgs(c.args);
    counts.push(n);
    keys.push(...c.keys.slice(0, 3 * n));
    for (let i = 7; i < c.args.length; i++) args.push(c.args[i]);
  }
  const first = calls[0];
  const firstN = messagesInArgs(first.args);
  if (first.keys.length > 3 * firstN) keys.push(first.keys[3 * firstN]);
  args.push(counts.join(","));
  return { keys, args };
}

/** A grouped call's reply, per request: its part of the reply, or the error its messages got. */
export function splitScriptReply(calls: readonly ScriptCall[], reply: unknown): (unknown[] | Error)[] {
  const total = calls.reduce((t, c) => t + messagesInArgs(c.args), 0);
  if (!Array.isArray(reply) || reply.length !== total) throw new Error(`unexpected publish script reply: ${JSON.stringify(reply)?.slice(0, 200)}`);
  let at = 0;
  return calls.map((c) => {
    const part = reply.slice(at, (at += messagesInArgs(c.args)));
    const err = part.find((r) => r instanceof Error);
    return err ? (err as Error) : part;
  });
}

/** The error a node call answers for a partition the node cannot serve now (nothing of it was written). */
export const ELSEWHERE = /^ELSEWHERE /;

/**
 * Calls of several partitions whose slots one Cluster node owns, as one call on that node (the
 * script's node form): each keeps its keys and args and gets its own reply. The first call's
 * first key is the one declared key, so a Cluster client routes the call to that node.
 */
export function nodeScriptCall(calls: readonly ScriptCall[]): ScriptCall {
  const args = ["node"];
  for (const c of calls) args.push(String(c.keys.length), String(c.args.length), ...c.keys, ...c.args);
  return { keys: [calls[0].keys[0]], args };
}

/** A node call's reply, per call: the reply its own call would have got, or its error (ELSEWHERE: not written). */
export function splitNodeReply(calls: number, reply: unknown): unknown[] {
  if (!Array.isArray(reply) || reply.length !== calls) throw new Error(`unexpected publish script reply: ${JSON.stringify(reply)?.slice(0, 200)}`);
  return reply;
}
