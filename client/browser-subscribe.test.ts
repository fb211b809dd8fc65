import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../test/support/browser.js";
import { startRelay } from "../test/support/relay-harness.js";
import { publish } from "../test/support/sse-client.js";
import { signFanoutToken } from "../protocol/auth/sign-token.js";

const PAGE = `<!doctype html><meta charset="utf-8"><title>client</title>
<script type="module">
  import { FanoutClient } from "/fanout-client.js";
  window.FanoutClient = FanoutClient;
  window.loaded = true;
</script>`;

/** The client bundled for browsers, served from an origin that is not the relay's. */
async function servePage(): Promise<{ server: Server; origin: string }> {
  const out = await build({ entryPoints: [fileURLToPath(new URL("./index.ts", import.meta.url))], bundle: true, format: "esm", platform: "browser", target: "es2022", write: false });
  const js = out.outputFiles[0].text;
  const server = createServer((req, res) => {
    if (req.url === "/fanout-client.js") res.writeHead(200, { "Content-Type": "text/javascript" }).end(js);
    else res.writeHead(200, { "Content-Type": "text/html" }).end(PAGE);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

type Client = InstanceType<typeof import("./index.js").FanoutClient>;
type PageWindow = { FanoutClient: typeof import("./index.js").FanoutClient; got: string[]; ready: number; client: Client };

describe("dynamic subscriptions and presence from a real browser (headless Chromium)", () => {
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

  it("subscribes and unsubscribes on the live stream cross-origin, on one connection, and reads presence", async () => {
    const SECRET = "browser-subs-secret-0123456789abcdef01";
    const r = await startRelay({ FANOUT_CORS_ORIGINS: site.origin, FANOUT_JWT_SECRET: SECRET, FANOUT_PRESENCE_CHANNELS: "room:*", FANOUT_PUBLISH_KEYS: "pk" });
    const key = { Authorization: "Bearer pk" };
    const token = await signFanoutToken(SECRET, { subscribe: ["room:*", "news"] }, { subject: "ann", info: { name: "Ann" } });
    let page: Page | undefined;
    try {
      page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`${site.origin}/`);
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
