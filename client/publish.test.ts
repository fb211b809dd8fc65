import { afterEach, describe, expect, it } from "vitest";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { FanoutClient, FanoutClientError, publish } from "./index.js";

describe("publish()", () => {
  let r: RunningRelay | undefined;
  afterEach(async () => {
    await r?.stop();
    r = undefined;
  });

  it("returns the relay's result for one message and for a batch", async () => {
    r = await startRelay();
    const one = await publish(r.base, { channel: "orders", type: "order.created", data: { n: 1 }, id: "evt-1" });
    expect(one).toMatchObject({ channel: "orders", duplicate: false, receivers: 0 });
    expect(typeof one.id).toBe("string");
    expect(await publish(r.base, { channel: "orders", data: "again", id: "evt-1" })).toMatchObject({ id: one.id, duplicate: true });
    const batch = await publish(r.base, [{ channel: "a", data: 1 }, { channel: "b", data: 2 }]);
    expect(batch.results.map((x) => x.channel)).toEqual(["a", "b"]);
    // A base URL with a trailing slash works the same.
    expect(await publish(`${r.base}/`, { channel: "a", data: 3 })).toMatchObject({ channel: "a" });
  });

  it("throws FanoutClientError with the relay's code and status", async () => {
    r = await startRelay({ FANOUT_PUBLISH_KEYS: "k1" });
    const err = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as FanoutClientError);
    const bad = await err(publish(r.base, { channel: "", data: 1 }, { key: "k1" }));
    expect(bad).toBeInstanceOf(FanoutClientError);
    expect(bad).toMatchObject({ code: "invalid_channel", status: 400 });
    expect(await err(publish(r.base, [], { key: "k1" }))).toMatchObject({ code: "empty_batch", status: 400 });
    expect(await err(publish(r.base, { channel: "a", data: 1 }, { key: "wrong" }))).toMatchObject({ code: "unauthorized", status: 401 });
    expect(await publish(r.base, { channel: "a", data: 1 }, { key: "k1" })).toMatchObject({ channel: "a" });
  });

  it("reports the Retry-After of a 429", async () => {
    r = await startRelay({ FANOUT_PUBLISH_KEYS: "k1", FANOUT_PUBLISH_RATE: "1" });
    let caught: FanoutClientError | undefined;
    for (let i = 0; i < 50 && !caught; i++) {
      await publish(r.base, { channel: "a", data: i }, { key: "k1" }).catch((e: FanoutClientError) => (caught = e));
    }
    expect(caught).toMatchObject({ code: "rate_limited", status: 429 });
    expect(caught!.retryAfterMs).toBeGreaterThan(0);
  });

  it("throws invalid_response, not a bare SyntaxError, when a 200 is not JSON (a proxy's page)", async () => {
    // What a misrouted proxy answers: 200 with a page.
    const page: Server = createServer((_req, res) => res.writeHead(200, { "Content-Type": "text/html" }).end("<html>login</html>"));
    await new Promise<void>((ok) => page.listen(0, "127.0.0.1", ok));
    const base = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
    try {
      const err = await publish(base, { channel: "a", data: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FanoutClientError);
      expect(err).toMatchObject({ code: "invalid_response", status: 200 });
      expect((err as Error).message).toContain("<html>login");
      const client = new FanoutClient({ url: `${base}/v1/events` });
      client.onError(() => undefined);
      try {
        const presence = await client.presence("room").catch((e: unknown) => e);
        expect(presence).toMatchObject({ code: "invalid_response", status: 200 });
      } finally {
        client.close();
      }
    } finally {
      await new Promise((ok) => page.close(ok));
    }
  });

  it("throws network_error when nothing answers", async () => {
    await expect(publish("http://127.0.0.1:1", { channel: "a", data: 1 })).rejects.toMatchObject({ code: "network_error", status: 0 });
  });
});
