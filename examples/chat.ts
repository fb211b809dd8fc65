/**
 * Chat over SSE: rooms on channels `chat:<room>`, private messages on `user:<id>:dm`,
 * presence from join/leave events, and a moderator watching every room with the pattern
 * `chat:*`.
 *
 * Run against a local relay (`npm start` in another terminal):
 *
 *     npx tsx examples/chat.ts [relay-url]      # default http://localhost:8080 (or $FANOUT_URL)
 *
 * With FANOUT_PUBLISH_KEYS set on the relay, pass one as $FANOUT_PUBLISH_KEY. In production
 * each user would get a JWT whose `subscribe` claim covers `chat:<their rooms>` and
 * `user:<id>:dm` only, passed as the client's `token`.
 */
import { pathToFileURL } from "node:url";
import { FanoutClient, publish, type Envelope } from "../client/index.js";

export interface ChatOptions {
  baseUrl?: string;
  key?: string;
  log?: (line: string) => void;
}

interface ChatText {
  from: string;
  text: string;
}

/** One chat participant: a subscription to their rooms and their DM channel. */
class ChatUser {
  readonly members = new Map<string, Set<string>>();
  readonly inbox: string[] = [];
  private readonly client: FanoutClient;
  private readonly ready: Promise<void>;

  constructor(
    readonly id: string,
    readonly rooms: string[],
    private readonly opts: Required<Pick<ChatOptions, "baseUrl" | "log">> & ChatOptions,
  ) {
    this.client = new FanoutClient({ url: opts.baseUrl, channels: [...rooms.map((r) => `chat:${r}`), `user:${id}:dm`] });
    this.client.on<ChatText>("chat.message", (e) => this.show(`[${room(e)}] ${e.data.from}: ${e.data.text}`));
    this.client.on<ChatText>("dm", (e) => this.show(`(dm) ${e.data.from}: ${e.data.text}`));
    this.client.on<{ user: string }>("presence.join", (e) => {
      this.roster(room(e)).add(e.data.user);
      if (e.data.user === this.id) return;
      this.show(`[${room(e)}] ${e.data.user} joined`);
      // Newcomers only hear joins after their own: tell them who is already here.
      void this.say(room(e), "presence.here", { user: this.id });
    });
    this.client.on<{ user: string }>("presence.here", (e) => this.roster(room(e)).add(e.data.user));
    this.client.on<{ user: string }>("presence.leave", (e) => {
      this.roster(room(e)).delete(e.data.user);
      if (e.data.user !== this.id) this.show(`[${room(e)}] ${e.data.user} left`);
    });
    this.client.onError((err) => opts.log(`${id}: ${err.code} ${err.message}`));
    this.ready = new Promise((resolve) => this.client.onReady(() => resolve()));
  }

  /** Joins once the subscription is live, so the user's own join and everything after it arrive. */
  async join(): Promise<void> {
    await this.ready;
    for (const r of this.rooms) await this.say(r, "presence.join", { user: this.id });
  }

  send(roomName: string, text: string): Promise<unknown> {
    return this.say(roomName, "chat.message", { from: this.id, text });
  }

  dm(to: string, text: string): Promise<unknown> {
    return publish(this.opts.baseUrl, { channel: `user:${to}:dm`, type: "dm", data: { from: this.id, text } }, { key: this.opts.key });
  }

  async leave(): Promise<void> {
    for (const r of this.rooms) await this.say(r, "presence.leave", { user: this.id });
    this.client.close();
  }

  private say(roomName: string, type: string, data: unknown): Promise<unknown> {
    return publish(this.opts.baseUrl, { channel: `chat:${roomName}`, type, data }, { key: this.opts.key });
  }

  private roster(roomName: string): Set<string> {
    let s = this.members.get(roomName);
    if (!s) this.members.set(roomName, (s = new Set()));
    return s;
  }

  private show(line: string): void {
    this.inbox.push(line);
    this.opts.log(`${this.id.padEnd(6)}| ${line}`);
  }
}

const room = (e: Envelope) => e.channel.slice("chat:".length);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A short scripted conversation; resolves with what each participant saw once everyone has left. */
export async function main(opts: ChatOptions = {}) {
  const o = { ...opts, baseUrl: opts.baseUrl ?? "http://localhost:8080", log: opts.log ?? console.log };
  const moderatorLog: string[] = [];
  const moderator = new FanoutClient({ url: o.baseUrl, patterns: ["chat:*"] });
  moderator.on("*", (e) => {
    moderatorLog.push(`${e.channel} ${e.type}`);
    o.log(`mod   | ${e.channel} (via ${e.pattern}) ${e.type} ${JSON.stringify(e.data)}`);
  });
  await new Promise<void>((resolve) => moderator.onReady(() => resolve()));

  const alice = new ChatUser("alice", ["general"], o);
  const bob = new ChatUser("bob", ["general", "random"], o);
  await alice.join();
  await pause(100);
  await bob.join();
  await pause(100);
  await alice.send("general", "hi bob!");
  await bob.send("random", "anyone here?");
  await bob.dm("alice", "psst, lunch?");
  await pause(200);
  const roster = { alice: [...(alice.members.get("general") ?? [])].sort(), bob: [...(bob.members.get("general") ?? [])].sort() };
  o.log(`who is in general: alice sees ${roster.alice.join(", ")}; bob sees ${roster.bob.join(", ")}`);
  await bob.leave();
  await pause(200);
  const afterLeave = [...(alice.members.get("general") ?? [])];
  await alice.leave();
  await pause(100);
  moderator.close();
  return { alice: alice.inbox, bob: bob.inbox, moderator: moderatorLog, roster, afterLeave };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main({ baseUrl: process.argv[2] ?? process.env.FANOUT_URL, key: process.env.FANOUT_PUBLISH_KEY });
}
