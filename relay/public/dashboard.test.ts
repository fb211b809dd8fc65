import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "../../test/support/browser.js";
import { startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { RedisServer, freePort } from "../../test/support/redis-server.js";

/** SCREENSHOT=1 (npm run screenshot:dashboard) writes docs/dashboard.png from the fleet run. */
const SCREENSHOT = process.env.SCREENSHOT === "1";
/** Fast beats and a short TTL so the page shows changes, and a dead relay leaves, within about a second. */
const FAST = { FANOUT_FLEET_HEARTBEAT_MS: "100", FANOUT_FLEET_TTL_MS: "1000" };
/** For the picture, rates over a second read better than over a tenth. */
const PICTURE = { FANOUT_FLEET_HEARTBEAT_MS: "1000", FANOUT_FLEET_TTL_MS: "2000" };
const XSS = `<img src=x onerror="window.__pwned=1">`;

async function until(what: string, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A relay in its own process, so the test can kill it the way a crash or OOM kill does: no drain, no last beat. */
async function spawnRelay(env: Record<string, string>): Promise<{ child: ChildProcess; base: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", "relay/main.ts"], {
    env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", FANOUT_UNSUBSCRIBE_DELAY_MS: "50", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.resume();
  child.stderr?.resume();
  const base = `http://127.0.0.1:${port}`;
  await until("the child relay ready", async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200);
  return { child, base };
}

const text = (page: Page, sel: string) => page.textContent(sel).then((t) => (t ?? "").trim());
const waitText = (page: Page, sel: string, ok: (t: string) => boolean, what: string) =>
  until(what, async () => ok(await text(page, sel).catch(() => "")));

describe("the live dashboard in a real browser (headless Chromium)", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it("on relay A shows the fleet: relay B joining, its clients and traffic, an alert, a relay draining, and B gone after it is killed", async () => {
    const redis = await RedisServer.start();
    const shared = { REDIS_URL: redis.url, ...(SCREENSHOT ? PICTURE : FAST), FANOUT_ALERT_CHANNEL_SUBSCRIBERS: "2" };
    const a = await startRelay({ ...shared, FANOUT_RELAY_ID: "relay-a" });
    const b = await spawnRelay({ ...shared, FANOUT_RELAY_ID: "relay-b" });
    const clients: SseClient[] = [];
    let publishing = true;
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    try {
      await page.goto(`${a.base}/dashboard`);
      await page.waitForSelector('#relays tr[data-relay="relay-a"]');
      await page.waitForSelector('#relays tr[data-relay="relay-b"]');
      await page.waitForSelector("#status.live");
      expect(await text(page, '[data-k="connections"]')).toBe("0");

      // Clients arrive on B (and one on A), messages flow.
      const openOn = async (base: string, qs: string) => {
        const c = await SseClient.open(`${base}/v1/events?${qs}`);
        clients.push(c);
        await c.waitReady();
      };
      for (let i = 0; i < 3; i++) await openOn(b.base, "channel=room:hot");
      await openOn(b.base, "pattern=news:*");
      await openOn(b.base, "channel=orders:eu");
      await openOn(a.base, "channel=chat:lobby");
      const traffic = (async () => {
        for (let i = 0; publishing; i++) {
          await publish(b.base, { messages: [{ channel: "room:hot", data: i }, ...(i % 2 ? [] : [{ channel: "news:eu", data: i }]), ...(i % 3 ? [] : [{ channel: "chat:lobby", data: i }]), ...(i % 7 ? [] : [{ channel: "orders:eu", data: i }])] }).catch(() => undefined);
          await new Promise((r) => setTimeout(r, 40));
        }
      })();

      await waitText(page, '#relays tr[data-relay="relay-b"] td.conns', (t) => t === "5", "B's five connections");
      await waitText(page, '#relays tr[data-relay="relay-a"] td.conns', (t) => t === "1", "A's one connection");
      await waitText(page, '[data-k="connections"]', (t) => t === "6", "six connections in the fleet");
      await waitText(page, '[data-k="out"]', (t) => Number.parseFloat(t) > 0, "messages out per second");
      await waitText(page, '[data-k="in"]', (t) => Number.parseFloat(t) > 0, "messages in per second");
      await waitText(page, '#channels tr[data-name="room:hot"] td.subs', (t) => t === "3", "room:hot with its three subscribers");
      await page.waitForSelector('#channels tr[data-name="news:*"]');
      // Over the threshold (2): the alert is up, naming the channel and the relay.
      const alert = page.locator('#alerts li[data-kind="channel_subscribers"]');
      await alert.waitFor();
      expect(await alert.textContent()).toContain("channel:room:hot");
      expect(await alert.textContent()).toContain("relay-b");
      expect(await page.getAttribute("#alertBox", "class")).toBe("firing");
      // Search narrows the list.
      await page.fill("#search", "room");
      await until("only room:hot listed", async () => (await page.$$eval("#channels tbody tr", (trs) => trs.map((tr) => (tr as HTMLElement).dataset.name))).join() === "room:hot");
      await page.fill("#search", "");

      if (SCREENSHOT) {
        // Let the charts fill a little before the picture.
        await new Promise((r) => setTimeout(r, 25_000));
        mkdirSync("docs", { recursive: true });
        await page.screenshot({ path: "docs/dashboard.png", fullPage: true });
      }

      publishing = false;
      await traffic;
      // A relay joins, then drains: the page shows it draining, then not at all.
      const c = await startRelay({ ...shared, FANOUT_RELAY_ID: "relay-c" });
      await waitText(page, '#relays tr[data-relay="relay-c"] .state', (t) => t === "ready", "C ready");
      await c.relay.drain(200);
      await waitText(page, '#relays tr[data-relay="relay-c"] .state', (t) => t === "draining", "C draining");
      await until("C gone from the page", async () => (await page.locator('#relays tr[data-relay="relay-c"]').count()) === 0);
      // B dies without draining: it stops beating and leaves the page after the TTL.
      b.child.kill("SIGKILL");
      await new Promise((r) => b.child.once("exit", r));
      await until("B gone from the page", async () => (await page.locator('#relays tr[data-relay="relay-b"]').count()) === 0);
      await waitText(page, '[data-k="relays"]', (t) => t === "1", "one relay left");
      expect(await page.locator('#relays tr[data-relay="relay-a"]').count()).toBe(1);
    } finally {
      publishing = false;
      clients.forEach((c) => c.close());
      await page.close();
      if (b.child.exitCode === null && b.child.signalCode === null) b.child.kill("SIGKILL");
      await a.stop();
      await redis.dispose();
    }
  }, SCREENSHOT ? 120_000 : undefined);

  it("with auth on shows totals only and asks for a key; with the key, names; the key never goes in a URL", async () => {
    const KEY = "pk-dashboard-browser";
    const r: RunningRelay = await startRelay({ ...FAST, FANOUT_PUBLISH_KEYS: KEY, FANOUT_RELAY_ID: "relay-secret-id" });
    const auth = { Authorization: `Bearer ${KEY}` };
    const c = await SseClient.open(`${r.base}/v1/events?channel=user:7:reset-token-5f2a9c&channel=${encodeURIComponent(XSS)}`, auth);
    const page = await browser.newPage();
    const urls: string[] = [];
    page.on("request", (req) => urls.push(req.url()));
    try {
      await c.waitReady();
      await page.goto(`${r.base}/dashboard`);
      await waitText(page, "#notice", (t) => t.includes("Totals only"), "the key prompt");
      await waitText(page, '[data-k="connections"]', (t) => t === "1", "the connection counted");
      const anonymous = (await page.content()) + (await page.evaluate(() => document.body.innerText));
      expect(anonymous).not.toContain("reset-token");
      expect(anonymous).not.toContain("relay-secret-id");
      expect(await page.locator("#channels tbody tr").count()).toBe(0);

      await page.fill("#key", KEY);
      await page.click("#useKey");
      await page.waitForSelector('#channels tr[data-name="user:7:reset-token-5f2a9c"]');
      await page.waitForSelector('#relays tr[data-relay="relay-secret-id"]');
      // A channel name is whatever a client chose: shown as text, never run as markup.
      await page.waitForSelector(`#channels tr[data-name="${XSS.replace(/"/g, '\\"')}"]`);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(await page.locator("#channels img").count()).toBe(0);
      expect(await text(page, "#notice")).toBe("");
      // Kept for the tab only, sent as a header.
      expect(await page.evaluate(() => sessionStorage.getItem("edge-fanout.dashboard.key"))).toBe(KEY);

      // A wrong key is refused and forgotten; the page falls back to totals.
      await page.fill("#key", "not-the-key");
      await page.click("#useKey");
      await waitText(page, "#notice", (t) => t.includes("Key refused") && t.includes("Totals only"), "the refusal");
      expect(await page.evaluate(() => sessionStorage.getItem("edge-fanout.dashboard.key"))).toBeNull();
      await until("the names gone", async () => (await page.locator("#channels tbody tr").count()) === 0);
      expect(urls.length).toBeGreaterThan(0);
      for (const u of urls) expect(u).not.toContain(KEY);
    } finally {
      c.close();
      await page.close();
      await r.stop();
    }
  });
});
