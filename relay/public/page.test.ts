import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { launchChromium } from "../../test/support/browser.js";
import { startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { publish } from "../../test/support/sse-client.js";
import { RedisServer } from "../../test/support/redis-server.js";
import { loadConfig } from "../config.js";
import { createRelay } from "../relay.js";

describe("in a real browser (headless Chromium)", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it("the start page subscribes, publishes and shows the message arriving", async () => {
    const r = await startRelay();
    try {
      const page = await browser.newPage();
      await page.goto(`${r.base}/`);
      await page.waitForSelector("#status.live");
      await page.fill("#pubData", '{"from":"browser"}');
      await page.click("#publish");
      await page.waitForSelector("#log li:has-text('browser')");
      expect(await page.textContent("#publishResult")).toMatch(/^200 /);
      // A message published elsewhere (curl, a function) shows up too.
      await publish(r.base, { channel: "demo", data: { from: "curl" } });
      await page.waitForSelector("#log li:has-text('curl')");
      await page.close();
    } finally {
      await r.stop();
    }
  });

  it("the start page starts a new stream, resuming, after the relay refused a reconnection (where EventSource gives up)", async () => {
    const r = await startRelay({ FANOUT_RETRY_MS: "100" });
    const page = await browser.newPage();
    try {
      let refused = 0;
      page.on("response", (res) => {
        if (res.url().includes("/v1/events") && res.status() === 503) refused++;
      });
      await page.goto(`${r.base}/`);
      await page.waitForSelector("#status.live");
      await publish(r.base, { channel: "demo", data: "before" });
      await page.waitForSelector("#log li:has-text('before')");
      // The relay refuses new streams with 503 (as while it drains) and drops the open one.
      r.relay.context.draining = true;
      for (const conn of [...r.relay.context.connections]) conn.destroy("error");
      await page.waitForSelector("#status.down");
      const deadline = Date.now() + 10_000;
      while (refused === 0 && Date.now() < deadline) await new Promise((x) => setTimeout(x, 50));
      expect(refused).toBeGreaterThan(0);
      await publish(r.base, { channel: "demo", data: "missed" });
      r.relay.context.draining = false;
      await page.waitForSelector("#status.live", { timeout: 15_000 });
      await page.waitForSelector("#log li:has-text('missed')");
      await publish(r.base, { channel: "demo", data: "after" });
      await page.waitForSelector("#log li:has-text('after')");
      const log = await page.$$eval("#log li:not(.meta)", (lis) => lis.map((li) => li.textContent));
      expect(log.filter((t) => /"(before|missed|after)"/.test(t ?? ""))).toHaveLength(3);
    } finally {
      await page.close();
      await r.stop();
    }
  });

  it("EventSource resumes with Last-Event-ID across a relay restart and misses nothing", async () => {
    const redis = await RedisServer.start();
    const env = { REDIS_URL: redis.url, FANOUT_RETRY_MS: "200", FANOUT_UNSUBSCRIBE_DELAY_MS: "50" };
    const a = await startRelay(env);
    const other = await startRelay(env);
    const page = await browser.newPage();
    try {
      await page.goto(`${a.base}/healthz`);
      await page.evaluate((url) => {
        const w = window as unknown as { got: unknown[]; es: EventSource };
        w.got = [];
        w.es = new EventSource(url);
        w.es.onmessage = (e) => w.got.push(JSON.parse(e.data).data);
      }, `${a.base}/v1/events?channel=resume`);
      const got = () => page.evaluate(() => (window as unknown as { got: unknown[] }).got);
      await page.waitForFunction(() => (window as unknown as { es: EventSource }).es.readyState === 1);
      await new Promise((x) => setTimeout(x, 200));
      for (let i = 0; i < 3; i++) await publish(other.base, { channel: "resume", data: i });
      await page.waitForFunction(() => (window as unknown as { got: unknown[] }).got.length === 3);
      // The relay goes away; messages keep being published through another relay.
      await a.relay.drain(500);
      for (let i = 3; i < 6; i++) await publish(other.base, { channel: "resume", data: i });
      // A new relay comes up on the same address; the browser reconnects by itself.
      const b = await createRelay(loadConfig({ ...env, PORT: String(a.port), HOST: "127.0.0.1" }));
      await b.listen();
      try {
        await page.waitForFunction(() => (window as unknown as { got: unknown[] }).got.length >= 6, undefined, { timeout: 25_000 });
        await publish(other.base, { channel: "resume", data: 6 });
        await page.waitForFunction(() => (window as unknown as { got: unknown[] }).got.length >= 7);
        expect(await got()).toEqual([0, 1, 2, 3, 4, 5, 6]);
      } finally {
        await page.close();
        await b.drain(200);
      }
    } finally {
      await other.stop();
      await redis.dispose();
    }
  });
});
