import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import type { Browser } from "playwright-core";
import { createElement } from "react";
import { renderToString } from "react-dom/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../test/support/browser.js";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { publish } from "../test/support/sse-client.js";
import { useChannel } from "./react.js";
import { signFanoutToken } from "../protocol/auth/sign-token.js";
import { sleep } from "./test/wait.js";

/** A component of a user's app, rendered by real React in StrictMode (which mounts effects twice). */
const APP = `
import { StrictMode, createElement as h, useState } from "react";
import { createRoot } from "react-dom/client";
import { useChannel } from "./react.ts";
const relay = new URL(location.href).searchParams.get("relay");
let seen = 0;
function Orders() {
  const { messages, status, last } = useChannel("orders", { url: relay, type: "order.created", keep: 2, onMessage: () => (window.seen = ++seen) });
  return h("div", null,
    h("p", { id: "status" }, status),
    h("ul", null, messages.map((m) => h("li", { key: m.id }, m.data.id + ":" + (m.meta?.source ?? "")))),
    h("p", { id: "last" }, last ? String(last.data.id) : ""));
}
// Headers held in state: the app signs its user in again (another token) while mounted.
function Inbox() {
  const [auth, setAuth] = useState(new URL(location.href).searchParams.get("auth"));
  window.setAuth = setAuth;
  const { status, error } = useChannel("inbox", { url: relay, headers: { Authorization: "Bearer " + auth } });
  return h("p", { id: "status" }, status + ":" + (error?.code ?? ""));
}
const root = createRoot(document.getElementById("root"));
root.render(h(StrictMode, null, h(new URL(location.href).searchParams.get("auth") ? Inbox : Orders)));
window.unmount = () => root.unmount();
`;

const JWT_SECRET = "react-test-secret-0123456789abcdef";

/** Streams open on the relay (in this process: /v1/stats needs an admin token here). */
async function connections(r: RunningRelay): Promise<number> {
  return r.relay.context.connections.size;
}

describe("useChannel (@edge-fanout/client/react) with real React", () => {
  let relay: RunningRelay;
  let browser: Browser;
  let site: Server;
  let origin: string;

  beforeAll(async () => {
    const out = await build({
      stdin: { contents: APP, resolveDir: fileURLToPath(new URL(".", import.meta.url)), loader: "js" },
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      define: { "process.env.NODE_ENV": '"development"' },
      write: false,
    });
    const js = out.outputFiles[0].text;
    site = createServer((req, res) => {
      if (req.url === "/app.js") res.writeHead(200, { "Content-Type": "text/javascript" }).end(js);
      else res.writeHead(200, { "Content-Type": "text/html" }).end('<!doctype html><meta charset="utf-8"><div id="root"></div><script type="module" src="/app.js"></script>');
    });
    await new Promise<void>((r) => site.listen(0, "127.0.0.1", () => r()));
    origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    [relay, browser] = await Promise.all([
      startRelay({ FANOUT_CORS_ORIGINS: origin, FANOUT_JWT_SECRET: JWT_SECRET, FANOUT_PUBLIC_CHANNELS: "orders" }),
      launchChromium(),
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    site?.closeAllConnections();
    await new Promise<void>((r) => (site ? site.close(() => r()) : r()));
    await relay?.stop();
  });

  it("renders on a server without connecting", async () => {
    function Orders() {
      const s = useChannel("orders", { url: relay.base });
      return createElement("p", null, `${s.status}:${s.messages.length}`);
    }
    expect(renderToString(createElement(Orders))).toBe("<p>connecting:0</p>");
    await sleep(50);
    expect(await connections(relay)).toBe(0);
  });

  it("opens a new stream with the new headers when a headers object changes", async () => {
    const page = await browser.newPage();
    try {
      const ok = await signFanoutToken(JWT_SECRET, { subscribe: ["inbox"] });
      await page.goto(`${origin}/?relay=${encodeURIComponent(relay.base)}&auth=${encodeURIComponent(ok)}`);
      await page.waitForFunction(() => document.getElementById("status")?.textContent === "live:");
      expect(await connections(relay)).toBe(1);
      // Signed in again, as someone not allowed on the channel: the stream must use the new
      // Authorization (and be refused), not stay open on the old one.
      const other = await signFanoutToken(JWT_SECRET, { subscribe: ["elsewhere"] });
      await page.evaluate((t) => (window as unknown as { setAuth(a: string): void }).setAuth(t), other);
      await page.waitForFunction(() => /forbidden/.test(document.getElementById("status")?.textContent ?? ""), undefined, { timeout: 10_000 });
      for (let i = 0; i < 100 && (await connections(relay)) !== 0; i++) await sleep(20);
      expect(await connections(relay)).toBe(0);
    } finally {
      await page.close();
    }
  });

  it("keeps one stream under StrictMode, renders the latest messages of its type with meta, closes the stream on unmount", async () => {
    const page = await browser.newPage();
    try {
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`${origin}/?relay=${encodeURIComponent(relay.base)}`);
      await page.waitForFunction(() => document.getElementById("status")?.textContent === "live");
      expect(await connections(relay)).toBe(1);
      const auth = { Authorization: `Bearer ${await signFanoutToken(JWT_SECRET, { publish: ["orders"] })}` };
      for (const id of [1, 2, 3]) expect((await publish(relay.base, { channel: "orders", type: "order.created", data: { id }, meta: { source: `s${id}` } }, auth)).status).toBe(200);
      expect((await publish(relay.base, { channel: "orders", type: "order.cancelled", data: { id: 9 } }, auth)).status).toBe(200);
      await page.waitForFunction(() => document.getElementById("last")?.textContent === "3");
      await sleep(50);
      expect(await page.evaluate(() => [...document.querySelectorAll("li")].map((li) => li.textContent))).toEqual(["2:s2", "3:s3"]);
      expect(await page.evaluate(() => (window as unknown as { seen: number }).seen)).toBe(3);
      await page.evaluate(() => (window as unknown as { unmount(): void }).unmount());
      for (let i = 0; i < 100 && (await connections(relay)) !== 0; i++) await sleep(20);
      expect(await connections(relay)).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
