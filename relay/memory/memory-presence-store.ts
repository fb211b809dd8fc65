import type { PresenceIdentity, PresenceMemberCount, PresenceStore } from "../presence/presence-store.js";

interface Entry {
  who: PresenceIdentity;
  expiresAt: number;
}

/** Presence on the embedded broker: one relay, so entries live in its memory. */
export class MemoryPresenceStore implements PresenceStore {
  private readonly channels = new Map<string, { entries: Map<string, Entry>; users: Map<string, number> }>();

  private of(channel: string) {
    let c = this.channels.get(channel);
    if (!c) this.channels.set(channel, (c = { entries: new Map(), users: new Map() }));
    return c;
  }

  async join(channel: string, stream: string, who: PresenceIdentity, expiresAt: number): Promise<boolean> {
    const c = this.of(channel);
    const had = c.entries.get(stream);
    if (had) {
      had.expiresAt = expiresAt;
      return false;
    }
    c.entries.set(stream, { who, expiresAt });
    const n = (c.users.get(who.sub) ?? 0) + 1;
    c.users.set(who.sub, n);
    return who.sub !== "" && n === 1;
  }

  async leave(channel: string, stream: string): Promise<PresenceIdentity | undefined> {
    const c = this.channels.get(channel);
    const e = c?.entries.get(stream);
    if (!c || !e) return undefined;
    c.entries.delete(stream);
    const n = (c.users.get(e.who.sub) ?? 1) - 1;
    if (n <= 0) c.users.delete(e.who.sub);
    else c.users.set(e.who.sub, n);
    if (c.entries.size === 0) this.channels.delete(channel);
    return e.who.sub !== "" && n <= 0 ? e.who : undefined;
  }

  async refresh(channel: string, streams: string[], expiresAt: number): Promise<string[]> {
    const c = this.channels.get(channel);
    const missing: string[] = [];
    for (const s of streams) {
      const e = c?.entries.get(s);
      if (e) e.expiresAt = expiresAt;
      else missing.push(s);
    }
    return missing;
  }

  async sweep(channel: string, now: number): Promise<PresenceIdentity[]> {
    const c = this.channels.get(channel);
    if (!c) return [];
    const left: PresenceIdentity[] = [];
    for (const [s, e] of [...c.entries]) {
      if (e.expiresAt > now) continue;
      const who = await this.leave(channel, s);
      if (who) left.push(who);
    }
    return left;
  }

  async list(channel: string, now: number, max: number): Promise<{ members: PresenceMemberCount[]; anonymous: number }> {
    const members = new Map<string, PresenceMemberCount>();
    let anonymous = 0;
    let read = 0;
    for (const e of this.channels.get(channel)?.entries.values() ?? []) {
      if (e.expiresAt <= now) continue;
      if (read++ >= max) break;
      if (e.who.sub === "") anonymous++;
      else {
        const m = members.get(e.who.sub);
        if (m) m.connections++;
        else members.set(e.who.sub, { ...e.who, connections: 1 });
      }
    }
    return { members: [...members.values()], anonymous };
  }

  async stats(channel: string, now: number): Promise<{ connections: number; users: number; anonymous: number }> {
    const c = this.channels.get(channel);
    let connections = 0;
    let anonymous = 0;
    const users = new Set<string>();
    for (const e of c?.entries.values() ?? []) {
      if (e.expiresAt <= now) continue;
      connections++;
      if (e.who.sub === "") anonymous++;
      else users.add(e.who.sub);
    }
    return { connections, users: users.size, anonymous };
  }
}
