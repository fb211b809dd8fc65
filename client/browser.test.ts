import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../test/support/browser.js";
import { startRelay } from "../test/support/relay-harness.js";
import { publish } from "../test/support/sse-client.js";
import { RedisServer } from "../test/support/redis-server.js";
import { loadConfig } from "../relay/config.js";
import { createRelay } from "../relay/relay.js";

const PAGE = `<!doctype html><meta charset="utf-8"><title>client</title>
<script type="module">
  import { FanoutClient } from "/fanout-client.js";
  window.FanoutClient = FanoutClient;
  window.loaded = true;
</script>`;

/** The client bundled for browsers, and a page loading it, from an origin that is not the relay's. */
async function servePage(): Promise<{ server: Server; origin: string }> {
  const out = await build({
    entryPoints: [fileURLToPath(new URL("./index.ts", import.meta.url))],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
  });
  const js = out.outputFiles[0].text;
  const server = createServer((req, res) => {
    if (req.url === "/fanout-client.js") res.writeHead(200, { "Content-Type": "text/javascript" }).end(js);
    else res.writeHead(200, { "Content-Type": "text/html" }).end(PAGE);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

type PageWindow = { FanoutClient: typeof import("./index.js").FanoutClient; got: unknown[]; types: string[]; statuses: string[]; ready: number; client: InstanceType<typeof import("./index.js").FanoutClient> };

describe("FanoutClient in a real browser (headless Chromium)", () => {
  let browser: Browser;
  let site: { server: Server; origin: string };
  beforeAll(async () => {
    [browser, site] = await Promise.all([launchChromium(), servePage()]);
  });
  afterAll(async () => {
    await browser?.close();
    site?.server.closeAllConnections();
    await new Promise<void>((r) => (site ? site.server.close(() => r()) : r()));
  });

  it("bundled with esbuild, receives messages cross-origin and resumes after its relay restarts", async () => {
    const redis = await RedisServer.start();
    const env = { REDIS_URL: redis.url, FANOUT_CORS_ORIGINS: site.origin, FANOUT_RETRY_MS: "100" };
    const a = await startRelay(env);
    const other = await startRelay(env);
    let page: Page | undefined;
    let b: Awaited<ReturnType<typeof createRelay>> | undefined;
    try {
      page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`${site.origin}/`);
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
