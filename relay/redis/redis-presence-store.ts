import type { RedisClient } from "./redis-connection.js";
import type { PresenceIdentity, PresenceMemberCount, PresenceStore } from "../presence/presence-store.js";

type Scripted = RedisClient & {
  fanoutPresenceJoin(numKeys: number, ...args: string[]): Promise<number>;
  fanoutPresenceLeave(numKeys: number, ...args: string[]): Promise<string | null>;
  fanoutPresenceSweep(numKeys: number, ...args: string[]): Promise<string[]>;
  fanoutPresenceRefresh(numKeys: number, ...args: string[]): Promise<string[]>;
};

/*
 * Per channel, three keys in one hash slot: Z (stream → expiry ms, sorted), H (stream → the
 * member as JSON {"s": sub, "i": info}) and U (sub → streams; "" counts anonymous ones).
 * Keys outlive their last refresh by KEY_TTL_FACTOR × the entry lifetime, so a deployment
 * whose relays all died leaves nothing behind.
 */
const LEAVE_ONE = `
local function leave(stream)
  if redis.call('ZREM', KEYS[1], stream) == 0 then return nil end
  local payload = redis.call('HGET', KEYS[2], stream)
  redis.call('HDEL', KEYS[2], stream)
  if not payload then return nil end
  local sub = cjson.decode(payload)['s'] or ''
  local n = redis.call('HINCRBY', KEYS[3], sub, -1)
  if n <= 0 then redis.call('HDEL', KEYS[3], sub) end
  if sub ~= '' and n <= 0 then return payload end
  return nil
end
`;

const JOIN = `
local function keep(ms)
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ms) end
end
local added = redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
keep(ARGV[5])
if added == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
local n = redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
keep(ARGV[5])
if ARGV[3] ~= '' and n == 1 then return 1 end
return 0
`;

const LEAVE = `${LEAVE_ONE}
return leave(ARGV[1])
`;

const SWEEP = `${LEAVE_ONE}
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, s in ipairs(gone) do
  local p = leave(s)
  if p then out[#out + 1] = p end
end
return out
`;

const REFRESH = `
local missing = {}
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
  else
    missing[#missing + 1] = ARGV[i]
  end
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return missing
`;

const KEY_TTL_FACTOR = 4;
const SWEEP_BATCH = 1000;

function decode(payload: string): PresenceIdentity {
  const m = JSON.parse(payload) as { s?: unknown; i?: unknown };
  const info = typeof m.i === "object" && m.i !== null && !Array.isArray(m.i) ? (m.i as Record<string, unknown>) : undefined;
  return { sub: typeof m.s === "string" ? m.s : "", ...(info ? { info } : {}) };
}

/** Presence in Redis, shared by every relay of the deployment (see presence-store.ts). */
export class RedisPresenceStore implements PresenceStore {
  private readonly cmd: Scripted;

  constructor(
    cmd: RedisClient,
    private readonly prefix: string,
    /** Entry lifetime: keys are kept a few times longer (see KEY_TTL_FACTOR). */
    private readonly ttlMs: number,
  ) {
    this.cmd = cmd as Scripted;
    this.cmd.defineCommand("fanoutPresenceJoin", { lua: JOIN });
    this.cmd.defineCommand("fanoutPresenceLeave", { lua: LEAVE });
    this.cmd.defineCommand("fanoutPresenceSweep", { lua: SWEEP });
    this.cmd.defineCommand("fanoutPresenceRefresh", { lua: REFRESH });
  }

  /** `{…}` makes the three keys one slot on Cluster (the tag ends at the channel's first `}`, the same in all three). */
  private keys(channel: string): string[] {
    const base = `${this.prefix}:presence:{${channel}}`;
    return [`${base}:z`, `${base}:h`, `${base}:u`];
  }

  async join(channel: string, stream: string, who: PresenceIdentity, expiresAt: number): Promise<boolean> {
    const payload = JSON.stringify({ s: who.sub, ...(who.info ? { i: who.info } : {}) });
    return (await this.cmd.fanoutPresenceJoin(3, ...this.keys(channel), stream, String(expiresAt), who.sub, payload, String(this.ttlMs * KEY_TTL_FACTOR))) === 1;
  }

  async leave(channel: string, stream: string): Promise<PresenceIdentity | undefined> {
    const p = await this.cmd.fanoutPresenceLeave(3, ...this.keys(channel), stream);
    return p ? decode(p) : undefined;
  }

  async refresh(channel: string, streams: string[], expiresAt: number): Promise<string[]> {
    if (streams.length === 0) return [];
    return this.cmd.fanoutPresenceRefresh(3, ...this.keys(channel), String(expiresAt), String(this.ttlMs * KEY_TTL_FACTOR), ...streams);
  }

  async sweep(channel: string, now: number): Promise<PresenceIdentity[]> {
    return (await this.cmd.fanoutPresenceSweep(3, ...this.keys(channel), String(now), String(SWEEP_BATCH))).map(decode);
  }

  async list(channel: string, now: number, max: number): Promise<{ members: PresenceMemberCount[]; anonymous: number }> {
    const [z, h] = this.keys(channel);
    const streams = (await this.cmd.zrangebyscore(z, `(${now}`, "+inf", "LIMIT", 0, max)) as string[];
    const payloads = streams.length > 0 ? ((await this.cmd.hmget(h, ...streams)) as (string | null)[]) : [];
    const members = new Map<string, PresenceMemberCount>();
    let anonymous = 0;
    for (const p of payloads) {
      if (!p) continue;
      const who = decode(p);
      if (who.sub === "") anonymous++;
      else {
        const m = members.get(who.sub);
        if (m) m.connections++;
        else members.set(who.sub, { ...who, connections: 1 });
      }
    }
    return { members: [...members.values()], anonymous };
  }

  async stats(channel: string, now: number): Promise<{ connections: number; users: number; anonymous: number }> {
    const [z, , u] = this.keys(channel);
    const [connections, fields, anon] = await Promise.all([this.cmd.zcount(z, `(${now}`, "+inf"), this.cmd.hlen(u), this.cmd.hget(u, "")]);
    const anonymous = Math.max(0, Number(anon ?? 0));
    return { connections, users: fields - (anon !== null ? 1 : 0), anonymous };
  }
}
