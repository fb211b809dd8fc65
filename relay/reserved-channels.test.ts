import { describe, expect, it } from "vitest";
import { publish } from "../test/support/sse-client.js";
import { relayFixture } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";

const modes = brokerModes();

describe.each(modes)("channels reserved for the relays on the $name", (mode) => {
  const { start, open } = relayFixture();

  it("refuses subscriptions that can only reach <prefix>:relay:*, with 400 reserved_channel", async () => {
    const r = await start(mode.env());
    const prefix = r.relay.context.config.log.prefix;
    const refused = [
      `channel=${encodeURIComponent(`${prefix}:relay:abc`)}`,
      `channel=ok&channel=${encodeURIComponent(`${prefix}:relay:`)}`,
      `pattern=${encodeURIComponent(`${prefix}:relay:*`)}`,
      `pattern=${encodeURIComponent(`${prefix}:rel[a]y:?*`)}`,
      `pattern=${encodeURIComponent(`${prefix}:re\\lay:*`)}`,
    ];
    for (const qs of refused) {
      const c = await open(qs);
      await c.waitClosed();
      expect(c.status, qs).toBe(400);
      expect(JSON.parse(c.body).error.code, qs).toBe("reserved_channel");
    }
    // Patterns that may also match other channels are fine.
    for (const qs of ["pattern=*", `pattern=${encodeURIComponent(`${prefix}:*`)}`, `pattern=${encodeURIComponent(`${prefix}:rel*`)}`]) {
      const c = await open(qs);
      await c.waitReady();
      expect(c.status, qs).toBe(200);
    }
  });

  it("refuses publishing there (a batch with one such channel publishes nothing)", async () => {
    const r = await start(mode.env());
    const prefix = r.relay.context.config.log.prefix;
    const c = await open("pattern=*");
    await c.waitReady();
    const one = await publish(r.base, { channel: `${prefix}:relay:x`, data: 1 });
    expect(one.status).toBe(400);
    expect(one.json.error.code).toBe("reserved_channel");
    const batch = await publish(r.base, { messages: [{ channel: "fine", data: 1 }, { channel: `${prefix}:relay:y`, data: 2 }] });
    expect(batch.status).toBe(400);
    expect(batch.json.error.code).toBe("reserved_channel");
    const ok = await publish(r.base, { channel: "after", data: 3 });
    await c.waitMessages(1);
    expect(c.envelopes().map((e) => e.id)).toEqual([ok.json.id]);
  });

  it("never delivers relay markers through a pattern that matches them, from this relay or another", async () => {
    const env = mode.env();
    const r1 = await start(env);
    const watcher = await open("pattern=*");
    await watcher.waitReady();
    // Every new stream makes its relay publish a marker; here on both relays (one log).
    const r2 = await start(env);
    await (await open("channel=a")).waitReady();
    const r2Base = r2.base;
    expect(r2Base).not.toBe(r1.base);
    await (await open("channel=b")).waitReady();
    const ok = await publish(r1.base, { channel: "last", data: 1 });
    await watcher.waitFor((c) => c.envelopes().some((e) => e.id === ok.json.id), 5000, "last");
    expect(watcher.envelopes().map((e) => e.channel)).toEqual(["last"]);
  });
});
