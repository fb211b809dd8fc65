import { afterEach, describe, expect, it } from "vitest";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { publish } from "../test/support/sse-client.js";
import { FanoutClient, type ConnectionStatus } from "./index.js";
import { startCuttingProxy, type CuttingProxy } from "./test/cutting-proxy.js";
import { recordingFetch } from "./test/recording-fetch.js";
import { sleep, waitFor } from "./test/wait.js";

/**
 * The stream has no end marker (no chunked framing, `Connection: close`), so a relay that
 * dies looks to a client exactly like one that closed the stream on purpose. The SDK must
 * treat every close as a drop.
 */
describe("FanoutClient when the stream is closed cleanly from the server side", () => {
  let relay: RunningRelay | undefined;
  let proxy: CuttingProxy | undefined;
  let client: FanoutClient | undefined;
  afterEach(async () => {
    client?.close();
    await proxy?.close();
    await relay?.stop();
  });

  it("reconnects and resumes with Last-Event-ID, losing and repeating nothing, even when cut mid-frame", async () => {
    relay = await startRelay({ FANOUT_RETRY_MS: "50" });
    proxy = await startCuttingProxy(relay.port);
    const { fetch, calls } = recordingFetch();
    client = new FanoutClient({ url: proxy.url, channels: ["drop"], fetch, backoff: { initialMs: 20, maxMs: 100 } });
    const got: number[] = [];
    const ready: string[] = [];
    const statuses: ConnectionStatus[] = [];
    const errors: string[] = [];
    client.on<number>("*", (e) => got.push(e.data));
    client.onReady((i) => ready.push(i.connection));
    client.onStatus((s) => statuses.push(s));
    client.onError((e) => errors.push(e.code));
    await waitFor(() => ready.length === 1, "ready");

    const N = 300;
    const CUTS = 6;
    for (let i = 0; i < N; i++) {
      const res = await publish(relay.base, { channel: "drop", data: i });
      expect(res.status).toBe(200);
      // The next chunk to the client (a message, a heartbeat or the next `ready`) is cut.
      if (i % 50 === 25) proxy.cutNext();
    }
    await waitFor(() => proxy!.cuts === CUTS && got.length >= N, `${CUTS} cuts and ${N} messages`, 15_000);
    await sleep(100);

    expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(errors).toEqual([]);
    expect(statuses.filter((s) => s === "reconnecting").length).toBeGreaterThanOrEqual(CUTS);
    expect(new Set(ready).size).toBe(ready.length);
    expect(ready.length).toBeGreaterThan(CUTS);
    // Every reconnection after a message carried the id of the last one handled.
    const resumed = calls.slice(1);
    expect(resumed.length).toBeGreaterThanOrEqual(CUTS);
    for (const c of resumed) expect(c.headers["last-event-id"]).toBeTruthy();
    expect(client.status).toBe("live");
  });
});
