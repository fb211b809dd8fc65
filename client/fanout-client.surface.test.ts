import { afterEach, describe, expect, it } from "vitest";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";
import { FanoutClient, FanoutClientError, publish, type Envelope } from "./index.js";
import { sleep, waitFor } from "./test/wait.js";

const modes = brokerModes();
const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

interface Orders {
  "order.created": { id: number; total: number };
  "order.cancelled": { id: number; reason: string };
}

describe.each(modes)("FanoutClient surface on the $name", (mode) => {
  let r: RunningRelay | undefined;
  const clients: FanoutClient<any>[] = [];
  const client = <E extends object>(c: FanoutClient<E>) => (clients.push(c), c);
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    await r?.stop();
  });

  it("hands typed handlers their own type's data, with the publisher's meta", async () => {
    r = await startRelay(mode.env());
    const c = client(new FanoutClient<Orders>({ url: r.base, channels: ["orders"] }));
    const created: Envelope<Orders["order.created"]>[] = [];
    const reasons: string[] = [];
    c.on("order.created", (m) => created.push(m));
    c.on("order.cancelled", (m) => reasons.push(m.data.reason));
    // @ts-expect-error the map types each handler's data: order.created has no `reason`.
    c.on("order.created", (m) => m.data.reason);
    await waitFor(() => c.status === "live", "live");
    await publish(r.base, { channel: "orders", type: "order.created", data: { id: 1, total: 9 }, meta: { source: "checkout" } }, { headers: { traceparent: TP } });
    await publish(r.base, { channel: "orders", type: "order.cancelled", data: { id: 1, reason: "late" } });
    await waitFor(() => reasons.length === 1, "the cancellation");
    expect(created).toEqual([
      { id: expect.any(String), channel: "orders", type: "order.created", meta: { source: "checkout", traceparent: TP }, data: { id: 1, total: 9 }, ts: expect.any(Number) },
    ]);
    const total: number = created[0].data.total;
    expect(total).toBe(9);
    expect(reasons).toEqual(["late"]);
  });

  it("iterates every message with for await, and the loop ends cleanly on close()", async () => {
    r = await startRelay(mode.env());
    const c = client(new FanoutClient({ url: r.base, channels: ["it"], patterns: ["it:*"] }));
    const seen: unknown[] = [];
    const loop = (async () => {
      for await (const m of c) seen.push(m.data);
      return "ended";
    })();
    await waitFor(() => c.status === "live", "live");
    await publish(r.base, [{ channel: "it", data: 1 }, { channel: "it:x", data: 2, type: "t" }, { channel: "it", data: 3 }]);
    await waitFor(() => seen.length === 3, "3 messages");
    c.close();
    expect(await loop).toBe("ended");
    expect(seen).toEqual([1, 2, 3]);
    expect(c.status).toBe("closed");
    // A loop started on a closed client ends at once.
    for await (const _ of c) throw new Error("a closed client yields nothing");
  });

  it("throws the refusal that stopped the client out of the loop", async () => {
    r = await startRelay({ ...mode.env(), FANOUT_JWT_SECRET: "surface-secret-0123456789" });
    const refused = client(new FanoutClient({ url: r.base, channels: ["secret"] }));
    const reported: string[] = [];
    refused.onError((e) => reported.push(e.code));
    const err = await (async () => {
      try {
        for await (const _ of refused) return "no error";
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(FanoutClientError);
    expect((err as FanoutClientError).status).toBe(401);
    expect(refused.status).toBe("closed");
    expect(reported).toEqual([(err as FanoutClientError).code]);
  });

  it("break leaves the client and its other loops running", async () => {
    r = await startRelay(mode.env());
    const c = client(new FanoutClient({ url: r.base, channels: ["br"] }));
    const first = c.messages();
    const second = c.messages();
    await waitFor(() => c.status === "live", "live");
    await publish(r.base, [{ channel: "br", data: 1 }, { channel: "br", data: 2 }]);
    for await (const m of first) {
      expect(m.data).toBe(1);
      break;
    }
    const got: unknown[] = [];
    for await (const m of second) {
      got.push(m.data);
      if (got.length === 3) break;
      if (got.length === 2) await publish(r.base, { channel: "br", data: 3 });
    }
    expect(got).toEqual([1, 2, 3]);
    expect(c.status).toBe("live");
    expect(await first.next()).toEqual({ value: undefined, done: true });
  });
});

describe("FanoutClient async iterator backpressure", () => {
  it("stops reading the stream while the loop's buffer is full, then delivers everything in order", async () => {
    let pulled = 0;
    const enc = new TextEncoder();
    // An endless stream that counts how far the client has read it.
    const fakeFetch: typeof fetch = async () =>
      new Response(
        new ReadableStream<Uint8Array>({
          start(ctl) {
            ctl.enqueue(enc.encode(`retry: 1000\n\nid: r\nevent: ready\ndata: {"connection":"c","channels":["b"],"patterns":[]}\n\n`));
          },
          pull(ctl) {
            const n = pulled++;
            ctl.enqueue(enc.encode(`id: ${n}\ndata: {"id":"0-${n}-0","channel":"b","data":${n},"ts":1}\n\n`));
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      );
    const c = new FanoutClient({ url: "http://relay.test", channels: ["b"], fetch: fakeFetch });
    try {
      const it = c.messages({ bufferSize: 4 });
      await waitFor(() => pulled > 0, "the first message");
      await sleep(100);
      // Four queued, one in the read that filled the buffer, one pulled ahead by the stream.
      expect(pulled).toBeLessThanOrEqual(4 + 2);
      const got: number[] = [];
      for await (const m of it) {
        got.push(m.data as number);
        if (got.length === 50) break;
      }
      expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i));

      // close() with a full buffer: the loop still gets what was queued (the client's
      // lastEventId already counts it), then ends.
      let handed = 0;
      c.on("*", () => handed++);
      const tail = c.messages({ bufferSize: 3 });
      await waitFor(() => handed >= 3, "a full buffer");
      await sleep(50);
      c.close();
      const rest: number[] = [];
      for await (const m of tail) rest.push(m.data as number);
      expect(rest).toHaveLength(handed);
      expect(rest.map((n) => `${n}`).at(-1)).toBe(c.lastEventId);
    } finally {
      c.close();
    }
    expect(() => c.messages({ bufferSize: 0 })).toThrow(RangeError);
  });
});
