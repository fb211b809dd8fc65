import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RedisCluster } from "../../test/support/redis-cluster.js";
import { startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { signFanoutToken } from "../../protocol/auth/sign-token.js";

const SECRET = "cluster-presence-secret-0123456789abcd";
let cluster: RedisCluster | undefined;
beforeAll(async () => {
  cluster = await RedisCluster.start(3);
}, 30_000);
afterAll(async () => {
  await cluster?.dispose();
});

const relays: RunningRelay[] = [];
const clients: SseClient[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  for (const r of relays.splice(0)) await r.stop();
});

const presence = (c: SseClient) => c.events.filter((e) => e.event === "presence").map((e) => `${JSON.parse(e.data).data.action}:${JSON.parse(e.data).data.member.sub}`);

describe("dynamic subscriptions and presence on Redis Cluster", () => {
  it("forwards a change to the relay holding the stream, and shares presence between relays (keys of one channel in one slot)", async () => {
    const env = { REDIS_URL: cluster!.url, FANOUT_LOG_PREFIX: "clp", FANOUT_JWT_SECRET: SECRET, FANOUT_PUBLISH_KEYS: "pk", FANOUT_PRESENCE_CHANNELS: "room:*" };
    const a = await startRelay({ ...env, FANOUT_RELAY_ID: "ca" });
    const b = await startRelay({ ...env, FANOUT_RELAY_ID: "cb" });
    relays.push(a, b);
    const ann = await signFanoutToken(SECRET, { subscribe: ["room:*", "x"] }, { subject: "ann" });
    const bob = await signFanoutToken(SECRET, { subscribe: ["room:*", "x"] }, { subject: "bob" });
    const onA = await SseClient.open(`${a.base}/v1/events?channel=x`, { Authorization: `Bearer ${ann}` });
    clients.push(onA);
    await onA.waitReady();
    const { connection, secret } = JSON.parse(onA.events[0].data);
    const res = await fetch(`${b.base}/v1/connections/${connection}/subscriptions`, { method: "POST", headers: { Authorization: `Bearer ${ann}` }, body: JSON.stringify({ secret, add: { channels: ["room:c"] } }) });
    expect(res.status, await res.clone().text()).toBe(200);
    await onA.waitFor(() => presence(onA).length === 1, 5000, "own join");
    const onB = await SseClient.open(`${b.base}/v1/events?channel=room:c`, { Authorization: `Bearer ${bob}` });
    clients.push(onB);
    await onA.waitFor(() => presence(onA).length === 2, 5000, "bob's join");
    expect((await (await fetch(`${b.base}/v1/presence/room:c?stats=1`, { headers: { Authorization: `Bearer ${bob}` } })).json()) as unknown).toEqual({ channel: "room:c", connections: 2, users: 2, anonymous: 0 });
    await publish(b.base, { channel: "room:c", data: 1 }, { Authorization: "Bearer pk" });
    await onA.waitMessages(1);
    onB.close();
    await onA.waitFor(() => presence(onA).length === 3, 5000, "bob's leave");
    expect(presence(onA)).toEqual(["join:ann", "join:bob", "leave:bob"]);
  }, 30_000);
});
