import { afterEach, describe, expect, it } from "vitest";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { publish } from "./index.js";
import { ChannelStore, type ChannelSnapshot } from "./channel-store.js";
import { sleep, waitFor } from "./test/wait.js";

/** The store under `useChannel`: what a React component would render, without React. */
describe("ChannelStore", () => {
  let r: RunningRelay | undefined;
  afterEach(async () => {
    await r?.stop();
  });

  const connections = async (base: string) => ((await (await fetch(`${base}/v1/stats`)).json()) as { connections: number }).connections;

  it("opens the stream with its first subscriber, keeps the latest messages of its type, closes after the last one leaves", async () => {
    r = await startRelay();
    const seen: unknown[] = [];
    const store = new ChannelStore<{ n: number }>({ url: r.base, channels: ["ui"], type: "tick", keep: 2, onMessage: (m) => seen.push(m.data.n) });
    const initial = store.getSnapshot();
    expect(initial).toMatchObject({ messages: [], status: "connecting", resets: 0 });
    await sleep(50);
    expect(await connections(r.base)).toBe(0);

    const snapshots: ChannelSnapshot<{ n: number }>[] = [];
    const off = store.subscribe(() => snapshots.push(store.getSnapshot()));
    await waitFor(() => store.getSnapshot().status === "live", "live");
    await publish(r.base, [1, 2, 3].map((n) => ({ channel: "ui", type: "tick", data: { n } })).concat([{ channel: "ui", type: "other", data: { n: 9 } }]));
    await waitFor(() => store.getSnapshot().last?.data.n === 3, "the third tick");
    const s = store.getSnapshot();
    expect(s.messages.map((m) => m.data.n)).toEqual([2, 3]);
    expect(seen).toEqual([1, 2, 3]);
    // Snapshots are immutable: each change is a new object.
    expect(initial.messages).toEqual([]);
    expect(new Set(snapshots).size).toBe(snapshots.length);

    // Unsubscribe and resubscribe at once (React StrictMode): the same stream goes on.
    off();
    const off2 = store.subscribe(() => {});
    await sleep(50);
    expect(store.getSnapshot().status).toBe("live");
    expect(await connections(r.base)).toBe(1);
    off2();
    await waitFor(() => store.getSnapshot().status === "closed", "closed");
    for (let i = 0; i < 100 && (await connections(r.base)) !== 0; i++) await sleep(20);
    expect(await connections(r.base)).toBe(0);
  });
});
