import { afterEach, describe, expect, it } from "vitest";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { publish } from "../test/support/sse-client.js";
import { brokerModes } from "../test/support/modes.js";
import { signFanoutToken } from "../protocol/auth/sign-token.js";
import { FanoutClient, type Envelope, type FanoutClientError, type ReadyInfo } from "./index.js";
import { waitFor } from "./test/wait.js";

const modes = brokerModes();

describe.each(modes)("FanoutClient.subscribe/unsubscribe against a relay on the $name", (mode) => {
  const relays: RunningRelay[] = [];
  const clients: FanoutClient[] = [];
  const start = async (env: Record<string, string> = {}) => {
    const r = await startRelay({ ...mode.env(), ...env });
    relays.push(r);
    return r;
  };
  const client = (opts: ConstructorParameters<typeof FanoutClient>[0]) => {
    const c = new FanoutClient({ backoff: { initialMs: 50, maxMs: 200 }, ...opts });
    clients.push(c);
    const rec = { c, got: [] as Envelope[], ready: [] as ReadyInfo[], errors: [] as FanoutClientError[] };
    c.on("*", (e) => rec.got.push(e));
    c.onReady((i) => rec.ready.push(i));
    c.onError((e) => rec.errors.push(e));
    return rec;
  };
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    for (const r of relays.splice(0)) await r.stop();
  });
  const names = (got: Envelope[]) => got.map((e) => `${e.channel}=${String(e.data)}`);

  it("adds and removes names on the open stream, resolving once live, without reconnecting", async () => {
    const r = await start();
    const rec = client({ url: r.base, channels: ["a"] });
    await waitFor(() => rec.ready.length === 1, "ready");
    const id = rec.c.connectionId;
    const ack = await rec.c.subscribe({ channels: ["b"], patterns: ["p:*"] });
    expect(ack).toMatchObject({ channels: ["a", "b"], patterns: ["p:*"], added: { channels: ["b"], patterns: ["p:*"] } });
    expect(rec.c.subscriptions).toEqual({ channels: ["a", "b"], patterns: ["p:*"] });
    await publish(r.base, { channel: "b", data: 1 });
    await publish(r.base, { channel: "p:1", data: 2 });
    await waitFor(() => rec.got.length === 2, "two messages");
    await rec.c.unsubscribe({ channels: ["a"], patterns: ["p:*"] });
    expect(rec.c.subscriptions).toEqual({ channels: ["b"], patterns: [] });
    await publish(r.base, { channel: "a", data: "no" });
    await publish(r.base, { channel: "p:2", data: "no" });
    await publish(r.base, { channel: "b", data: 3 });
    await waitFor(() => rec.got.length === 3, "three messages");
    expect(names(rec.got)).toEqual(["b=1", "p:1=2", "b=3"]);
    expect(rec.ready.length).toBe(1);
    expect(rec.c.connectionId).toBe(id);
    // Already there: nothing to do, resolves at once.
    await rec.c.subscribe({ channels: ["b"] });
    // Nothing left would make reconnections impossible: refused on the client.
    await expect(rec.c.unsubscribe({ channels: ["b"] })).rejects.toMatchObject({ code: "no_subscriptions" });
    expect(rec.c.subscriptions).toEqual({ channels: ["b"], patterns: [] });
  });

  it("reconnects with the current set and loses nothing published on an added channel while away", async () => {
    const r = await start();
    const rec = client({ url: r.base, channels: ["a"] });
    await waitFor(() => rec.ready.length === 1, "ready");
    await rec.c.subscribe({ channels: ["b"] });
    await publish(r.base, { channel: "b", data: 1 });
    await waitFor(() => rec.got.length === 1, "one message");
    for (const conn of [...r.relay.context.connections]) conn.destroy("error");
    await publish(r.base, { channel: "b", data: 2 });
    await waitFor(() => rec.ready.length === 2, "second ready");
    expect(rec.ready[1]).toMatchObject({ channels: ["a", "b"] });
    await publish(r.base, { channel: "b", data: 3 });
    await waitFor(() => rec.got.length === 3, "three messages");
    expect(names(rec.got)).toEqual(["b=1", "b=2", "b=3"]);
  });

  it("a change made while the stream is down is carried by the reconnection", async () => {
    const r = await start();
    const rec = client({ url: r.base, channels: ["a"] });
    await waitFor(() => rec.ready.length === 1, "ready");
    for (const conn of [...r.relay.context.connections]) conn.destroy("error");
    const done = rec.c.subscribe({ channels: ["late"] });
    await done;
    await waitFor(() => rec.ready.length === 2, "second ready");
    expect(rec.ready[1].channels).toEqual(["a", "late"]);
  });

  it("with since, delivers the added channel's history first", async () => {
    const r = await start();
    const rec = client({ url: r.base, channels: ["a"] });
    await waitFor(() => rec.ready.length === 1, "ready");
    const mark = rec.c.lastEventId;
    await publish(r.base, { channel: "h", data: "old" });
    const ack = await rec.c.subscribe({ channels: ["h"] }, { since: mark });
    expect(ack.history).toEqual({ sent: 1 });
    expect(names(rec.got)).toEqual(["h=old"]);
  });

  it("presence(): members and stats of a presence channel, and join events through on(\"presence\")", async () => {
    const SECRET = "sdk-presence-secret-0123456789abcdef01";
    const r = await start({ FANOUT_JWT_SECRET: SECRET, FANOUT_PRESENCE_CHANNELS: "room:*" });
    const ann = await signFanoutToken(SECRET, { subscribe: ["room:*"] }, { subject: "ann" });
    const rec = client({ url: r.base, channels: ["room:1"], token: ann });
    const joins: unknown[] = [];
    rec.c.on<{ action: string; member: { sub: string } }>("presence", (e) => joins.push(`${e.data.action}:${e.data.member.sub}`));
    await waitFor(() => joins.length === 1, "own join");
    expect(joins).toEqual(["join:ann"]);
    expect(await rec.c.presence("room:1")).toEqual({ channel: "room:1", members: [{ sub: "ann", connections: 1 }], anonymous: 0 });
    expect(await rec.c.presence("room:1", { stats: true })).toEqual({ channel: "room:1", connections: 1, users: 1, anonymous: 0 });
    // Joining another presence channel on the open stream.
    await rec.c.subscribe({ channels: ["room:2"] });
    expect((await rec.c.presence("room:2", { stats: true })).users).toBe(1);
    await expect(rec.c.presence("lobby")).rejects.toMatchObject({ code: "presence_not_enabled", status: 404 });
  });

  it("a refused subscribe rejects with the relay's code and leaves the set as it was", async () => {
    const SECRET = "sdk-subs-secret-0123456789abcdef0123";
    const r = await start({ FANOUT_JWT_SECRET: SECRET });
    const token = await signFanoutToken(SECRET, { subscribe: ["a", "mine:*"] });
    const rec = client({ url: r.base, channels: ["a"], token });
    await waitFor(() => rec.ready.length === 1, "ready");
    await expect(rec.c.subscribe({ channels: ["mine:1", "theirs"] })).rejects.toMatchObject({ code: "forbidden_channel", status: 403 });
    expect(rec.c.subscriptions).toEqual({ channels: ["a"], patterns: [] });
    await rec.c.subscribe({ channels: ["mine:1"] });
    expect(rec.c.subscriptions.channels).toEqual(["a", "mine:1"]);
    expect(rec.c.status).toBe("live");
  });
});
