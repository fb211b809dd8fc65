import { describe, expect, it } from "vitest";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { relayFixture, startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { brokerModes, redisFixture } from "../../test/support/modes.js";
import { signFanoutToken } from "../../protocol/auth/sign-token.js";

const modes = brokerModes();

/** The stream's ready event: its connection id and secret. */
function ready(c: SseClient): { connection: string; secret: string; channels: string[]; patterns: string[] } {
  return JSON.parse(c.events.find((e) => e.event === "ready")!.data);
}

async function change(base: string, c: SseClient, body: Record<string, unknown>, headers: Record<string, string> = {}, query = ""): Promise<{ status: number; json: any }> {
  const { connection, secret } = ready(c);
  const res = await fetch(`${base}/v1/connections/${encodeURIComponent(connection)}/subscriptions${query}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify({ secret, ...body }),
  });
  return { status: res.status, json: await res.json() };
}

function acks(c: SseClient): any[] {
  return c.events.filter((e) => e.event === "subscribed").map((e) => JSON.parse(e.data));
}

function channelsOf(c: SseClient): string[] {
  return c.envelopes().map((e) => `${e.channel}:${JSON.stringify(e.data)}`);
}

describe.each(modes)("POST /v1/connections/<id>/subscriptions on the $name", (mode) => {
  let r: RunningRelay;
  const { start, open, openUrl } = relayFixture();

  it("adds channels and patterns to a live stream, acks on the stream once live, and removes them", async () => {
    r = await start(mode.env());
    const c = await open("channel=a");
    await c.waitReady();
    await publish(r.base, { channel: "b", data: "before" });
    const res = await change(r.base, c, { request: "req-1", add: { channels: ["b"], patterns: ["p:*"] } });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ request: "req-1", channels: ["a", "b"], patterns: ["p:*"], added: { channels: ["b"], patterns: ["p:*"] }, removed: { channels: [], patterns: [] } });
    // The ack is on the stream by the time the answer arrives, with an id (a resume point).
    await c.waitFor(() => acks(c).length === 1);
    const ackEvent = c.events.find((e) => e.event === "subscribed")!;
    expect(ackEvent.id).toBeTruthy();
    expect(acks(c)[0]).toEqual(res.json);

    await publish(r.base, { channel: "b", data: 1 });
    await publish(r.base, { channel: "p:x", data: 2 });
    await publish(r.base, { channel: "a", data: 3 });
    await c.waitMessages(3);
    expect(channelsOf(c)).toEqual(["b:1", "p:x:2", "a:3"]);
    expect(c.envelopes()[1].pattern).toBe("p:*");

    const rm = await change(r.base, c, { remove: { channels: ["a", "not-mine"], patterns: ["p:*"] } });
    expect(rm.status).toBe(200);
    expect(rm.json).toMatchObject({ channels: ["b"], patterns: [], removed: { channels: ["a"], patterns: ["p:*"] }, added: { channels: [], patterns: [] } });
    expect(typeof rm.json.request).toBe("string");
    await publish(r.base, { channel: "a", data: "gone" });
    await publish(r.base, { channel: "p:y", data: "gone" });
    await publish(r.base, { channel: "b", data: 4 });
    await c.waitMessages(4);
    expect(channelsOf(c)).toEqual(["b:1", "p:x:2", "a:3", "b:4"]);
    // An empty change is a barrier: acked like any other.
    const none = await change(r.base, c, { request: "noop" });
    expect(none.json).toEqual({ request: "noop", channels: ["b"], patterns: [], added: { channels: [], patterns: [] }, removed: { channels: [], patterns: [] } });
    await c.waitFor(() => acks(c).some((a) => a.request === "noop"));
  });

  it("moves the stream's hold on the relay's pattern budget with its set, and frees it when the stream ends", async () => {
    r = await start(mode.env());
    const limits = r.relay.context.limits;
    const c = await open("pattern=p:*");
    await c.waitReady();
    const one = limits.patternCost;
    expect(one).toBeGreaterThan(0);
    expect((await change(r.base, c, { add: { patterns: ["q:*:x"] } })).status).toBe(200);
    const two = limits.patternCost;
    expect(two).toBeGreaterThan(one);
    expect((await change(r.base, c, { remove: { patterns: ["p:*", "q:*:x"] } })).status).toBe(200);
    expect(limits.patternCost).toBe(0);
    expect((await change(r.base, c, { add: { patterns: ["p:*"] } })).status).toBe(200);
    expect(limits.patternCost).toBe(one);
    c.close();
    await c.waitClosed();
    const end = Date.now() + 2000;
    while (limits.patternCost !== 0 && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
    expect(limits.patternCost).toBe(0);
  });

  it("waits for the stream's own replay: a change sent mid-replay is acked after the last replayed message", async () => {
    r = await start(mode.env());
    const first = await open("channel=big");
    await first.waitReady();
    const from = first.lastEventId!;
    first.close();
    // About 6 MB of history: more than socket buffers hold, so a reader that stops reading stops the replay.
    const blob = "x".repeat(20_000);
    for (let i = 0; i < 10; i++) {
      const res = await publish(r.base, { messages: Array.from({ length: 30 }, (_, k) => ({ channel: "big", data: { n: i * 30 + k, blob } })) });
      expect(res.status).toBe(200);
    }
    const c = await open("channel=big", { "Last-Event-ID": from });
    await c.waitReady();
    c.pause();
    let answered = false;
    const pending = change(r.base, c, { request: "mid", add: { channels: ["late"] } }).then((x) => ((answered = true), x));
    await new Promise((res) => setTimeout(res, 300));
    expect(answered).toBe(false);
    c.resume();
    expect((await pending).status).toBe(200);
    await c.waitFor(() => acks(c).length === 1, 10_000, "ack");
    const order = c.events.filter((e) => e.event !== "ready").map((e) => (e.event === "subscribed" ? "ack" : "m"));
    expect(order.length).toBe(301);
    expect(order.at(-1)).toBe("ack");
  });

  it("resumes with the added channels from the ack's id: what was published while away arrives, nothing twice", async () => {
    r = await start(mode.env());
    const c = await open("channel=a");
    await c.waitReady();
    await change(r.base, c, { add: { channels: ["b"] } });
    await publish(r.base, { channel: "b", data: 1 });
    await c.waitMessages(1);
    const last = c.lastEventId!;
    c.close();
    await publish(r.base, { channel: "b", data: 2 });
    await publish(r.base, { channel: "a", data: 3 });
    const again = await open("channel=a&channel=b", { "Last-Event-ID": last });
    await again.waitMessages(2);
    // Replay is in log order per partition; the two channels may sit in different ones.
    expect(channelsOf(again).sort()).toEqual(["a:3", "b:2"]);
  });

  it("an ack's id resumes from the moment of adding: history before it is not replayed", async () => {
    r = await start(mode.env());
    const c = await open("channel=a");
    await c.waitReady();
    await publish(r.base, { channel: "b", data: "before" });
    await change(r.base, c, { add: { channels: ["b"] } });
    await c.waitFor(() => acks(c).length === 1);
    const atAck = c.lastEventId!;
    c.close();
    await publish(r.base, { channel: "b", data: "after" });
    const again = await open("channel=a&channel=b", { "Last-Event-ID": atAck });
    await again.waitMessages(1);
    await publish(r.base, { channel: "a", data: "end" });
    await again.waitMessages(2);
    expect(channelsOf(again)).toEqual(['b:"after"', 'a:"end"']);
  });

  it("with since, sends the added names' history after that cursor (without ids) before the ack, then live", async () => {
    r = await start(mode.env());
    const c = await open("channel=a");
    await c.waitReady();
    const from = c.lastEventId!;
    await publish(r.base, { channel: "b", data: 1 });
    await publish(r.base, { channel: "a", data: 2 });
    await publish(r.base, { channel: "q:1", data: 3 });
    await publish(r.base, { channel: "c", data: "not added" });
    await c.waitMessages(1);
    const idBefore = c.lastEventId;
    const res = await change(r.base, c, { add: { channels: ["b"], patterns: ["q:*"] }, since: from });
    expect(res.status).toBe(200);
    expect(res.json.history).toEqual({ sent: 2 });
    await c.waitFor(() => acks(c).length === 1);
    const names = c.events.filter((e) => e.event !== "ready").map((e) => (e.event === "subscribed" ? "ack" : JSON.parse(e.data).channel));
    expect(names).toEqual(["a", "b", "q:1", "ack"]);
    // History leaves the stream's id alone.
    const history = c.events.filter((e) => e.event === "message").slice(1);
    expect(history.map((e) => e.id)).toEqual([idBefore, idBefore]);
    await publish(r.base, { channel: "b", data: 4 });
    await c.waitMessages(4);
    expect(channelsOf(c).slice(-1)).toEqual(["b:4"]);
  });

  it("refuses with codes: unknown connection 404, wrong secret 403, bad body 400, too many, reserved", async () => {
    const env = mode.env();
    r = await start({ ...env, FANOUT_MAX_SUBSCRIPTIONS: "3" });
    const reserved = `${env.FANOUT_LOG_PREFIX ?? "fanout"}:relay:x`;
    const c = await open("channel=a");
    await c.waitReady();
    const { connection } = ready(c);
    const post = async (id: string, body: unknown) => {
      const res = await fetch(`${r.base}/v1/connections/${encodeURIComponent(id)}/subscriptions`, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) });
      return { status: res.status, code: ((await res.json()) as any).error?.code };
    };
    const secret = ready(c).secret;
    expect(await post("nope", { secret, add: { channels: ["b"] } })).toEqual({ status: 404, code: "unknown_connection" });
    expect(await post(`${connection.split("~")[0]}~00000000-0000-0000-0000-000000000000`, { secret, add: { channels: ["b"] } })).toEqual({ status: 404, code: "unknown_connection" });
    expect(await post(`bad relay id!~x`, { secret, add: { channels: ["b"] } })).toEqual({ status: 404, code: "unknown_connection" });
    expect(await post(connection, { secret: "wrong", add: { channels: ["b"] } })).toEqual({ status: 403, code: "bad_connection_secret" });
    expect(await post(connection, { add: { channels: ["b"] } })).toEqual({ status: 403, code: "bad_connection_secret" });
    expect(await post(connection, "{")).toMatchObject({ status: 400 });
    expect(await post(connection, { secret, add: { channels: "b" } })).toEqual({ status: 400, code: "invalid_body" });
    expect(await post(connection, { secret, extra: 1 })).toEqual({ status: 400, code: "invalid_body" });
    expect(await post(connection, { secret, add: { channels: ["b", "c", "d"] } })).toEqual({ status: 400, code: "too_many_subscriptions" });
    expect(await post(connection, { secret, add: { channels: [reserved] } })).toEqual({ status: 400, code: "reserved_channel" });
    expect(await post(connection, { secret, add: { channels: ["bad\nname"] } })).toMatchObject({ status: 400 });
    expect(await post(connection, { secret, add: { channels: ["b"] }, since: "zz_zz" })).toEqual({ status: 400, code: "invalid_cursor" });
    // Nothing above changed the stream.
    expect(acks(c)).toEqual([]);
    c.close();
    await c.waitClosed();
    await new Promise((res) => setTimeout(res, 50));
    expect(await post(connection, { secret, add: { channels: ["b"] } })).toEqual({ status: 404, code: "unknown_connection" });
  });

  it("authorizes added names like a new stream: token grants, public channels, tickets", async () => {
    const SECRET = "subs-test-secret-0123456789abcdef0123";
    r = await start({ ...mode.env(), FANOUT_JWT_SECRET: SECRET, FANOUT_PUBLISH_KEYS: "pk", FANOUT_PUBLIC_CHANNELS: "pub:*" });
    const onlyA = await signFanoutToken(SECRET, { subscribe: ["a", "a:*"] });
    const c = await open("channel=a", { Authorization: `Bearer ${onlyA}` });
    await c.waitReady();
    // The stream's credential does not carry over: each request brings its own.
    expect((await change(r.base, c, { add: { channels: ["a:1"] } })).status).toBe(401);
    expect(await change(r.base, c, { add: { channels: ["b"] } }, { Authorization: `Bearer ${onlyA}` })).toMatchObject({ status: 403, json: { error: { code: "forbidden_channel" } } });
    expect(await change(r.base, c, { add: { patterns: ["*"] } }, { Authorization: `Bearer ${onlyA}` })).toMatchObject({ status: 403, json: { error: { code: "forbidden_pattern" } } });
    expect((await change(r.base, c, { add: { channels: ["a:1"], patterns: ["pub:*"] } }, { Authorization: `Bearer ${onlyA}` })).status).toBe(200);
    expect((await change(r.base, c, { add: { channels: ["pub:x"] } })).status).toBe(200);
    // Removing needs only the secret.
    expect((await change(r.base, c, { remove: { channels: ["a"] } })).status).toBe(200);
    const t = await fetch(`${r.base}/v1/tickets`, { method: "POST", headers: { Authorization: "Bearer pk", "Content-Type": "application/json" }, body: JSON.stringify({ channels: ["t"] }) });
    const { ticket } = (await t.json()) as { ticket: string };
    expect((await change(r.base, c, { add: { channels: ["t"] } }, {}, `?ticket=${encodeURIComponent(ticket)}`)).status).toBe(200);
    // A ticket is used once.
    expect((await change(r.base, c, { add: { channels: ["t"] } }, {}, `?ticket=${encodeURIComponent(ticket)}`)).status).toBe(401);
    await c.waitFor(() => acks(c).length === 4);
    expect(acks(c)[3].channels).toEqual(["a:1", "pub:x", "t"]);
  });

  it("a name added with a shorter-lived token brings the stream's end forward to that token's exp", async () => {
    const SECRET = "subs-test-secret-0123456789abcdef0123";
    r = await start({ ...mode.env(), FANOUT_JWT_SECRET: SECRET });
    const long = await signFanoutToken(SECRET, { subscribe: ["*"] }, { expiresIn: 3600 });
    const short = await signFanoutToken(SECRET, { subscribe: ["b"] }, { expiresIn: 1 });
    const c = await openUrl(`${r.base}/v1/events?channel=a`, { Authorization: `Bearer ${long}` });
    await c.waitReady();
    expect((await change(r.base, c, { add: { channels: ["b"] } }, { Authorization: `Bearer ${short}` })).status).toBe(200);
    await c.waitFor(() => c.events.some((e) => e.event === "expired"), 5000, "expired");
    await c.waitClosed();
  });
});

describe("dynamic subscriptions across two relays on one Redis", () => {
  const redis = redisFixture();
  const { openUrl } = relayFixture();

  it("a change sent to the relay that does not hold the stream is routed to the one that does", async () => {
    const env = { REDIS_URL: redis.server.url, FANOUT_LOG_PREFIX: "two", PORT: "0", HOST: "127.0.0.1" };
    const a = await startRelay({ ...env, FANOUT_RELAY_ID: "relay-a" });
    const b = await startRelay({ ...env, FANOUT_RELAY_ID: "relay-b" });
    try {
      const c = await openUrl(`${a.base}/v1/events?channel=x`);
      await c.waitReady();
      expect(ready(c).connection.startsWith("relay-a~")).toBe(true);
      const res = await change(b.base, c, { request: "via-b", add: { channels: ["y"] } });
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ request: "via-b", channels: ["x", "y"] });
      await c.waitFor(() => acks(c).length === 1);
      await publish(b.base, { channel: "y", data: "routed" });
      await c.waitMessages(1);
      expect(channelsOf(c)).toEqual(['y:"routed"']);
      const metrics = async (base: string) => (await (await fetch(`${base}/metrics`)).text()).split("\n").filter((l) => l.startsWith("fanout_subscription_changes_total"));
      expect(await metrics(b.base)).toEqual([expect.stringMatching(/where="forwarded".*relay="relay-b"\} 1$/)]);
      expect(await metrics(a.base)).toEqual([expect.stringMatching(/where="local".*relay="relay-a"\} 1$/)]);
      // Refusals come back from the owner with their codes.
      expect((await change(b.base, c, { secret: "wrong", add: { channels: ["z"] } })).status).toBe(403);
      // A relay that is not there: 404 at once, even while a client's `*` makes every relay
      // pattern-subscribed to its control channel's name.
      const all = await openUrl(`${b.base}/v1/events?pattern=*`);
      await all.waitReady();
      const gone = await fetch(`${b.base}/v1/connections/relay-zz~00000000-0000-0000-0000-000000000000/subscriptions`, { method: "POST", body: JSON.stringify({ secret: "s", add: { channels: ["z"] } }) });
      expect(gone.status).toBe(404);
      expect(((await gone.json()) as any).error.code).toBe("unknown_connection");
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
