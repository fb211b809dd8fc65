import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { publish } from "../test/support/sse-client.js";
import { RedisServer } from "../test/support/redis-server.js";
import { loadConfig } from "../relay/config.js";
import { createRelay, type Relay } from "../relay/relay.js";
import { FanoutClient, type ConnectionStatus, type Envelope } from "./index.js";
import { recordingFetch } from "./test/recording-fetch.js";
import { sleep, waitFor } from "./test/wait.js";

describe("FanoutClient resume across relays sharing one Redis", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis?.dispose();
  });

  it("follows a drain to another relay, then a restart on the same port, losing and repeating nothing", async () => {
    const env = { REDIS_URL: redis.url, FANOUT_RETRY_MS: "100", FANOUT_DRAIN_GRACE_MS: "500" };
    // P only publishes, and stays up throughout: publishing never pauses for the hand-overs.
    const p = await startRelay(env);
    const a = await startRelay(env);
    const b = await startRelay(env);
    let bRestarted: Relay | undefined;
    let target: RunningRelay = a;
    const { fetch, calls } = recordingFetch();
    const client = new FanoutClient({ url: () => target.base, channels: ["h"], patterns: ["hp:*"], fetch, backoff: { initialMs: 50, maxMs: 300 } });
    const got: Envelope<number>[] = [];
    const statuses: ConnectionStatus[] = [];
    const connections: string[] = [];
    const resets: string[] = [];
    client.on<number>("*", (e) => got.push(e));
    client.onStatus((s) => statuses.push(s));
    client.onReady((i) => connections.push(i.connection));
    client.onReset((r) => resets.push(r));

    await waitFor(() => connections.length === 1, "ready on A");
    const published: Record<string, number[]> = { h: [], "hp:x": [], "hp:y": [] };
    let seq = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        const batch = Array.from({ length: 3 }, () => {
          const ch = ["h", "hp:x", "hp:y"][seq % 3];
          published[ch].push(seq);
          return { channel: ch, data: seq++ };
        });
        const res = await publish(p.base, { messages: batch });
        if (res.status !== 200) throw new Error(`publish failed: ${res.status} ${JSON.stringify(res.json)}`);
        await sleep(2);
      }
    })();
    try {
      await waitFor(() => got.length >= 30, "live on A");

      // Hand-over 1: A drains; the url function now points at B.
      target = b;
      await a.relay.drain(500);
      await waitFor(() => connections.length === 2, "reconnected to B");
      const onB = got.length;
      await waitFor(() => got.length >= onB + 30, "live on B");

      // Hand-over 2: B drains and a new relay comes up on B's port; the URL does not change.
      await b.relay.drain(500);
      await sleep(300); // nothing listens here for a while: the client backs off and retries
      bRestarted = await createRelay(loadConfig({ ...env, PORT: String(b.port), HOST: "127.0.0.1" }));
      await bRestarted.listen();
      await waitFor(() => connections.length === 3, "reconnected to the restarted B", 10_000);
      const onB2 = got.length;
      await waitFor(() => got.length >= onB2 + 30, "live on restarted B");
    } finally {
      publishing = false;
      await publisher;
    }
    await waitFor(() => got.length >= seq, `all ${seq} messages`, 10_000);
    await sleep(200);
    client.close();

    const byChannel: Record<string, number[]> = { h: [], "hp:x": [], "hp:y": [] };
    for (const e of got) byChannel[e.channel].push(e.data);
    expect(byChannel).toEqual(published);
    expect(got).toHaveLength(seq);
    expect(new Set(got.map((e) => e.id)).size).toBe(seq);
    expect(got.filter((e) => e.channel !== "h").every((e) => e.pattern === "hp:*")).toBe(true);
    expect(resets).toEqual([]);
    expect(new Set(connections).size).toBe(3);
    expect(statuses.filter((s) => s === "live")).toHaveLength(3);
    expect(statuses[0]).toBe("connecting");
    // Every reconnection carried the id of the last message handled before it.
    const resumed = calls.filter((c) => c.status === 200).slice(1);
    expect(resumed.length).toBeGreaterThanOrEqual(2);
    for (const c of resumed) expect(c.headers["last-event-id"]).toBeTruthy();
    await Promise.all([p.stop(), b.stop().catch(() => {}), bRestarted?.drain(200)]);
  });
});
