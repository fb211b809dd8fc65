import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { launchChromium } from "../../test/support/browser.js";

const PAGE = `<!doctype html><meta charset="utf-8"><title>client</title>
<script type="module">
  import { FanoutClient } from "/fanout-client.js";
  window.FanoutClient = FanoutClient;
  window.loaded = true;
</script>`;

/** The SDK bundled for browsers (esbuild), and a page loading it, from an origin that is not the relay's. */
async function servePage(): Promise<{ server: Server; origin: string }> {
  const out = await build({
    entryPoints: [fileURLToPath(new URL("../index.ts", import.meta.url))],
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

/**
 * Headless Chromium and a page serving the bundled SDK (`window.FanoutClient` once
 * `window.loaded`), started once for the test file and closed after it. Call at the top of
 * a `describe`; read `browser()` and `origin()` inside the tests.
 */
export function sdkPageFixture(): { browser(): Browser; origin(): string } {
  let browser: Browser | undefined;
  let site: { server: Server; origin: string } | undefined;
  beforeAll(async () => {
    [browser, site] = await Promise.all([launchChromium(), servePage()]);
  });
  afterAll(async () => {
    await browser?.close();
    site?.server.closeAllConnections();
    await new Promise<void>((r) => (site ? site.server.close(() => r()) : r()));
  });
  return { browser: () => browser!, origin: () => site!.origin };
}
