import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { sdkPageFixture } from "./test/sdk-page.js";
import { startRelay } from "../test/support/relay-harness.js";
import { publish } from "../test/support/sse-client.js";
import { RedisServer } from "../test/support/redis-server.js";
import { loadConfig } from "../relay/config.js";
import { createRelay } from "../relay/relay.js";

type PageWindow = { FanoutClient: typeof import("./index.js").FanoutClient; got: unknown[]; types: string[]; statuses: string[]; ready: number; client: InstanceType<typeof import("./index.js").FanoutClient> };

describe("FanoutClient in a real browser (headless Chromium)", () => {
  const site = sdkPageFixture();

  it("bundled with esbuild, receives messages cross-origin and resumes after its relay restarts", async () => {
    const redis = await RedisServer.start();
    const env = { REDIS_URL: redis.url, FANOUT_CORS_ORIGINS: site.origin(), FANOUT_RETRY_MS: "100" };
    const a = await startRelay(env);
    const other = await startRelay(env);
    let page: Page | undefined;
    let b: Awaited<ReturnType<typeof createRelay>> | undefined;
    try {
      page = await site.browser().newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`${site.origin()}/`);
      await page.waitForFunction(() => (window as unknown as { loaded?: boolean }).loaded === true);
      await page.evaluate((url) => {
        const w = window as unknown as PageWindow;
        w.got = [];
        w.types = [];
        w.statuses = [];
        w.ready = 0;
        w.client = new w.FanoutClient({ url, channels: ["browser"], patterns: ["room:*"], backoff: { initialMs: 50, maxMs: 300 } });
        w.client.on("*", (e, raw) => {
          w.got.push(e.data);
          w.types.push(raw.type);
        });
        w.client.onReady(() => w.ready++);
        w.client.onStatus((s) => w.statuses.push(s));
      }, a.base);
      const got = () => page!.evaluate(() => (window as unknown as PageWindow).got);
      await page.waitForFunction(() => (window as unknown as PageWindow).ready === 1);

      await publish(other.base, { channel: "browser", type: "greeting", data: { text: "héllo 🙂" } });
      await publish(other.base, { channel: "room:1", data: 1 });
      await page.waitForFunction(() => (window as unknown as PageWindow).got.length === 2);
      expect(await got()).toEqual([{ text: "héllo 🙂" }, 1]);
      expect(await page.evaluate(() => (window as unknown as PageWindow).types)).toEqual(["greeting", "message"]);

      // The relay goes away; messages go on through another relay; a new one takes the same address.
      await a.relay.drain(300);
      for (let i = 2; i < 5; i++) await publish(other.base, { channel: "room:1", data: i });
      b = await createRelay(loadConfig({ ...env, PORT: String(a.port), HOST: "127.0.0.1" }));
      await b.listen();
      await page.waitForFunction(() => (window as unknown as PageWindow).ready === 2, undefined, { timeout: 10_000 });
      await publish(other.base, { channel: "room:1", data: 5 });
      await page.waitForFunction(() => (window as unknown as PageWindow).got.length >= 6);
      await new Promise((r) => setTimeout(r, 100));
      // Last-Event-ID went as a header through a CORS preflight: nothing missed, nothing twice.
      expect(await got()).toEqual([{ text: "héllo 🙂" }, 1, 2, 3, 4, 5]);
      const statuses = await page.evaluate(() => (window as unknown as PageWindow).statuses);
      expect(statuses[0]).toBe("connecting");
      expect(statuses.at(-1)).toBe("live");
      expect(statuses).toContain("reconnecting");
      expect(errors).toEqual([]);
      await page.evaluate(() => (window as unknown as PageWindow).client.close());
    } finally {
      await page?.close();
      await Promise.all([b?.drain(200), other.stop()]);
      await redis.dispose();
    }
  });
});
