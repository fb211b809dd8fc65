import { afterEach, describe, expect, it } from "vitest";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { publish, requestTicket } from "../test/support/sse-client.js";
import { brokerModes } from "../test/support/modes.js";
import { signFanoutToken } from "../protocol/auth/sign-token.js";
import { FanoutClient, type Envelope, type FanoutClientError } from "./index.js";
import { sleep, waitFor } from "./test/wait.js";

const SECRET = "sdk-expiry-secret-0123456789abcdef0123";
const KEY = "pk-sdk-expiry";
const key = { Authorization: `Bearer ${KEY}` };
const modes = brokerModes();

describe.each(modes)("FanoutClient and expiring tokens, on the $name", (mode) => {
  const relays: RunningRelay[] = [];
  const clients: FanoutClient[] = [];
  const start = async () => {
    const r = await startRelay({ FANOUT_JWT_SECRET: SECRET, FANOUT_PUBLISH_KEYS: KEY, FANOUT_RETRY_MS: "100", FANOUT_JWT_CLOCK_SKEW: "0", ...mode.env() });
    relays.push(r);
    return r;
  };
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    await Promise.all(relays.splice(0).map((r) => r.stop()));
  });

  it("with getToken, resumes with a fresh token after `expired` and misses nothing published during the switch", async () => {
    const r = await start();
    const first = await signFanoutToken(SECRET, { subscribe: ["room:*"] }, { expiresIn: 2 });
    let refreshes = 0;
    const client = new FanoutClient({
      url: r.base,
      channels: ["room:1"],
      token: first,
      getToken: async () => {
        refreshes++;
        await sleep(150); // a backend round trip: messages keep arriving meanwhile
        return signFanoutToken(SECRET, { subscribe: ["room:*"] }, { expiresIn: 3600 });
      },
    });
    clients.push(client);
    const got: number[] = [];
    const errors: FanoutClientError[] = [];
    const connections: string[] = [];
    client.on<number>("*", (e: Envelope<number>) => got.push(e.data));
    client.onError((e) => errors.push(e));
    client.onReady((i) => connections.push(i.connection));
    await waitFor(() => connections.length === 1, "first ready");

    let seq = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        const res = await publish(r.base, { channel: "room:1", data: seq++ }, key);
        if (res.status !== 200) throw new Error(`publish failed: ${res.status}`);
        await sleep(20);
      }
    })();
    try {
      await waitFor(() => connections.length === 2, "reconnected with a fresh token", 10_000);
      const after = got.length;
      await waitFor(() => got.length >= after + 10, "live after the switch");
    } finally {
      publishing = false;
      await publisher;
    }
    await waitFor(() => got.length >= seq, `all ${seq} messages`);
    expect(got).toEqual(Array.from({ length: seq }, (_, i) => i));
    expect(refreshes).toBe(1);
    expect(client.status).toBe("live");
    expect(errors).toEqual([]);
  });

  it("with getToken, a reconnection refused with 401 token_expired gets a fresh token", async () => {
    const r = await start();
    const first = await signFanoutToken(SECRET, { subscribe: ["room:*"] }, { expiresIn: 1 });
    let refreshes = 0;
    // The first attempt finds the token already expired: the relay answers 401 token_expired.
    await sleep(Math.max(0, JSON.parse(Buffer.from(first.split(".")[1], "base64url").toString()).exp * 1000 - Date.now()) + 100);
    const client = new FanoutClient({
      url: r.base,
      channels: ["room:1"],
      token: first,
      getToken: () => {
        refreshes++;
        return signFanoutToken(SECRET, { subscribe: ["room:*"] }, { expiresIn: 3600 });
      },
    });
    clients.push(client);
    const got: number[] = [];
    client.on<number>("*", (e: Envelope<number>) => got.push(e.data));
    await waitFor(() => client.status === "live", "live with the fresh token");
    await publish(r.base, { channel: "room:1", data: 7 }, key);
    await waitFor(() => got.length === 1, "the message");
    expect(refreshes).toBe(1);
  });

  it("with getTicket, a stream whose ticket was minted by a short-lived JWT resumes on a new ticket after `expired`", async () => {
    const r = await start();
    let minted = 0;
    const getTicket = async () => {
      // The first ticket comes from a token about to expire, later ones from a long-lived one.
      const jwt = await signFanoutToken(SECRET, { subscribe: ["room:*"] }, { expiresIn: minted++ === 0 ? 3 : 3600 });
      return ((await requestTicket(r.base, { channels: ["room:1"] }, { Authorization: `Bearer ${jwt}` })).json as { ticket: string }).ticket;
    };
    const client = new FanoutClient({ url: r.base, channels: ["room:1"], getTicket });
    clients.push(client);
    const got: number[] = [];
    const connections: string[] = [];
    client.on<number>("*", (e: Envelope<number>) => got.push(e.data));
    client.onReady((i) => connections.push(i.connection));
    await waitFor(() => connections.length === 1, "first ready");
    await publish(r.base, { channel: "room:1", data: 1 }, key);
    await waitFor(() => connections.length === 2, "reconnected on a new ticket", 10_000);
    await publish(r.base, { channel: "room:1", data: 2 }, key);
    await waitFor(() => got.length === 2, "both messages");
    expect(got).toEqual([1, 2]);
    expect(minted).toBe(2);
  });

  it("without a way to refresh, stops with a token_expired error when the stream expires", async () => {
    const r = await start();
    const jwt = await signFanoutToken(SECRET, { subscribe: ["room:*"] }, { expiresIn: 2 });
    const client = new FanoutClient({ url: r.base, channels: ["room:1"], token: jwt });
    clients.push(client);
    const errors: FanoutClientError[] = [];
    client.onError((e) => errors.push(e));
    await waitFor(() => client.status === "live", "live");
    await waitFor(() => client.status === "closed", "stopped at exp", 10_000);
    expect(errors.map((e) => [e.code, e.status])).toEqual([["token_expired", 401]]);
  });
});
