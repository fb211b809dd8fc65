import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { sdkPageFixture } from "./test/sdk-page.js";
import { startRelay } from "../test/support/relay-harness.js";
import { publish } from "../test/support/sse-client.js";
import { signFanoutToken } from "../protocol/auth/sign-token.js";


type Client = InstanceType<typeof import("./index.js").FanoutClient>;
type PageWindow = { FanoutClient: typeof import("./index.js").FanoutClient; got: string[]; ready: number; client: Client };

describe("dynamic subscriptions and presence from a real browser (headless Chromium)", () => {
  const site = sdkPageFixture();

  it("subscribes and unsubscribes on the live stream cross-origin, on one connection, and reads presence", async () => {
    const SECRET = "browser-subs-secret-0123456789abcdef01";
    const r = await startRelay({ FANOUT_CORS_ORIGINS: site.origin(), FANOUT_JWT_SECRET: SECRET, FANOUT_PRESENCE_CHANNELS: "room:*", FANOUT_PUBLISH_KEYS: "pk" });
    const key = { Authorization: "Bearer pk" };
    const token = await signFanoutToken(SECRET, { subscribe: ["room:*", "news"] }, { subject: "ann", info: { name: "Ann" } });
    let page: Page | undefined;
    try {
      page = await site.browser().newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`${site.origin()}/`);
      await page.waitForFunction(() => (window as unknown as { loaded?: boolean }).loaded === true);
      await page.evaluate(
        ({ url, token }) => {
          const win = window as unknown as PageWindow;
          win.got = [];
          win.ready = 0;
          win.client = new win.FanoutClient({ url, token, channels: ["news"], backoff: { initialMs: 50, maxMs: 300 } });
          win.client.on("*", (e, raw) => win.got.push(`${raw.type}:${e.channel}:${JSON.stringify(e.data)}`));
          win.client.onReady(() => win.ready++);
        },
        { url: r.base, token },
      );
      await page.waitForFunction(() => (window as unknown as PageWindow).ready === 1);
      const got = () => page!.evaluate(() => (window as unknown as PageWindow).got);

      // Resolves once the stream acknowledged it: a publish right after is delivered.
      await page.evaluate(() => (window as unknown as PageWindow).client.subscribe({ channels: ["room:1"] }).then(() => undefined));
      await publish(r.base, { channel: "room:1", data: "hi" }, key);
      await page.waitForFunction(() => (window as unknown as PageWindow).got.some((g) => g.startsWith("message:room:1")));
      const who = await page.evaluate(() => (window as unknown as PageWindow).client.presence("room:1"));
      expect(who).toEqual({ channel: "room:1", members: [{ sub: "ann", info: { name: "Ann" }, connections: 1 }], anonymous: 0 });

      await page.evaluate(() => (window as unknown as PageWindow).client.unsubscribe({ channels: ["room:1"] }).then(() => undefined));
      await publish(r.base, { channel: "room:1", data: "gone" }, key);
      await publish(r.base, { channel: "news", data: "end" }, key);
      await page.waitForFunction(() => (window as unknown as PageWindow).got.some((g) => g.startsWith("message:news")));
      // Its own presence join (published beside the ack, so in either order with "hi"), "hi", and nothing of room:1 after leaving it.
      expect((await got()).sort()).toEqual(['message:news:"end"', 'message:room:1:"hi"', 'presence:room:1:{"action":"join","channel":"room:1","member":{"sub":"ann","info":{"name":"Ann"}}}']);
      // One stream throughout: no reconnection, one connection on the relay.
      expect(await page.evaluate(() => (window as unknown as PageWindow).ready)).toBe(1);
      expect(r.relay.context.connections.size).toBe(1);
      // A refused change rejects in the page with the relay's code.
      const refused = await page.evaluate(() => (window as unknown as PageWindow).client.subscribe({ channels: ["secret"] }).then(() => "ok", (e: { code: string }) => e.code));
      expect(refused).toBe("forbidden_channel");
      expect(errors).toEqual([]);
      await page.evaluate(() => (window as unknown as PageWindow).client.close());
    } finally {
      await page?.close();
      await r.stop();
    }
  });
});
