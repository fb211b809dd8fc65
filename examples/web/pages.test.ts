import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../../test/support/browser.js";
import { startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { RedisServer } from "../../test/support/redis-server.js";
import { publish } from "../../test/support/sse-client.js";
import { loadConfig } from "../../relay/config.js";
import { createRelay } from "../../relay/relay.js";

/** SCREENSHOT=1 (npm run screenshot:examples) writes docs/chat.png and docs/notifications.png. */
const SCREENSHOT = process.env.SCREENSHOT === "1";
const SECRET = "examples-test-secret-0123456789abcdef";
const HOOK_SECRET = "examples-hook-secret";
/** What `npm run examples` sets (with a fixed secret, so a restarted relay accepts the same tokens). */
const EXAMPLES = {
  FANOUT_JWT_SECRET: SECRET,
  FANOUT_EXAMPLES_LOGIN: "on",
  FANOUT_PRESENCE_CHANNELS: "chat:*",
  FANOUT_PUBLIC_CHANNELS: "invalidate:*",
  FANOUT_HOOK_SECRET: HOOK_SECRET,
  FANOUT_RETRY_MS: "100",
};

/** Opens `page` of the examples in a fresh context and signs in as `user` through the page's form. */
async function signedIn(context: BrowserContext, base: string, page: string, user: string): Promise<Page> {
  const p = await context.newPage();
  p.on("pageerror", (e) => console.error(`[${user}]`, e.message));
  await p.goto(`${base}/examples/${page}`);
  await p.fill("#name", user);
  await p.click("#login button");
  await p.waitForSelector("#status.live");
  return p;
}

const texts = (p: Page, sel: string) => p.$$eval(sel, (els) => els.map((e) => e.textContent ?? ""));

describe("the example pages in a real browser (headless Chromium)", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it("chat between two browser contexts: presence, messages, history on join, a private message, the moderator view, leaving", async () => {
    const r = await startRelay(EXAMPLES);
    const contexts = [await browser.newContext({ viewport: { width: 1100, height: 640 } }), await browser.newContext({ viewport: { width: 1100, height: 640 } })];
    try {
      const alice = await signedIn(contexts[0], r.base, "chat.html", "alice");
      const bob = await signedIn(contexts[1], r.base, "chat.html", "bob");
      // Real presence: each sees both in #general (bob from the presence list, alice from bob's join event).
      await alice.waitForFunction(() => [...document.querySelectorAll("#roster li")].map((l) => l.textContent).sort().join() === "alice,bob");
      await bob.waitForFunction(() => [...document.querySelectorAll("#roster li")].map((l) => l.textContent).sort().join() === "alice,bob");
      await alice.waitForSelector("#messages li.system:has-text('bob joined')");

      await alice.fill("#text", "hi bob!");
      await alice.click("#send button");
      await bob.waitForSelector("#messages li:has-text('alice: hi bob!')");

      // alice talks in #random before bob is there; bob joins and gets the history.
      await alice.fill("#roomName", "random");
      await alice.click("#joinRoom button");
      await alice.waitForSelector("#roomTitle:has-text('#random')");
      await alice.waitForFunction(() => [...document.querySelectorAll("#roster li")].map((l) => l.textContent).join() === "alice");
      await alice.fill("#text", "anyone here?");
      await alice.click("#send button");
      await alice.waitForSelector("#messages li:has-text('alice: anyone here?')");
      await bob.fill("#roomName", "random");
      await bob.click("#joinRoom button");
      await bob.waitForSelector("#messages li:has-text('alice: anyone here?')");
      await bob.waitForFunction(() => [...document.querySelectorAll("#roster li")].map((l) => l.textContent).sort().join() === "alice,bob");

      // A private message reaches alice only.
      await bob.fill("#dmTo", "alice");
      await bob.fill("#dmText", "psst, lunch?");
      await bob.click("#dmForm button");
      await alice.waitForSelector("#dms li:has-text('bob → you: psst, lunch?')");
      await bob.waitForSelector("#dms li:has-text('you → alice: psst, lunch?')");
      expect((await texts(bob, "#dms li")).some((t) => t.includes("→ you"))).toBe(false);

      // The moderator view follows every room (chat:*) on the same page's stream.
      await alice.check("#moderator");
      await alice.waitForFunction(() => (window as unknown as { moderator?: { status: string } }).moderator?.status === "live");
      await bob.click('#rooms button[data-room="general"]');
      await bob.fill("#text", "back in general");
      await bob.click("#send button");
      await alice.waitForSelector("#modLog li:has-text('chat:general chat.message bob: back in general')");

      await alice.click('#rooms button[data-room="general"]');
      if (SCREENSHOT) {
        mkdirSync("docs", { recursive: true });
        await alice.screenshot({ path: "docs/chat.png", fullPage: true });
      }
      // bob leaves #general: alice sees him go, in the roster and as an event.
      await bob.click("#leave");
      await alice.waitForSelector("#messages li.system:has-text('bob left')");
      await alice.waitForFunction(() => [...document.querySelectorAll("#roster li")].map((l) => l.textContent).join() === "alice");
    } finally {
      for (const c of contexts) await c.close();
      await r.stop();
    }
  });

  it("notifications: each user sees only their own channel; the page shows the relay refusing another user's (403)", async () => {
    const r = await startRelay(EXAMPLES);
    const contexts = [await browser.newContext({ viewport: { width: 1000, height: 560 } }), await browser.newContext({ viewport: { width: 1000, height: 560 } })];
    try {
      const ann = await signedIn(contexts[0], r.base, "notifications.html", "ann");
      const bob = await signedIn(contexts[1], r.base, "notifications.html", "bob");
      await bob.fill("#to", "ann");
      await bob.fill("#text", "your order shipped");
      await bob.click("#notify button");
      await ann.waitForSelector("#inbox li:has-text('your order shipped')");
      await ann.fill("#to", "bob");
      await ann.fill("#text", "for bob only");
      await ann.click("#notify button");
      await bob.waitForSelector("#inbox li:has-text('for bob only')");

      await ann.fill("#other", "bob");
      await ann.click("#peek button");
      await ann.waitForSelector("#peekResult.error");
      expect(await ann.textContent("#peekResult")).toMatch(/^refused: 403 forbidden/);
      // Nothing of bob's channel reaches ann, and her own stream goes on.
      await publish(r.base, { channel: "user:bob:notifications", data: { text: "secret for bob" } }, { Authorization: `Bearer ${(await login(r.base, "bob")).token}` });
      await bob.waitForSelector("#inbox li:has-text('secret for bob')");
      await bob.fill("#to", "ann");
      await bob.fill("#text", "still there?");
      await bob.click("#notify button");
      await ann.waitForSelector("#inbox li:has-text('still there?')");
      expect(await texts(ann, "#inbox li")).toEqual([expect.stringContaining("from bob: still there?"), expect.stringContaining("from bob: your order shipped")]);
      expect(await ann.getAttribute("#status", "class")).toBe("status live");
      if (SCREENSHOT) {
        mkdirSync("docs", { recursive: true });
        await ann.screenshot({ path: "docs/notifications.png", fullPage: true });
      }
    } finally {
      for (const c of contexts) await c.close();
      await r.stop();
    }
  });

  it("two tabs of one user (each signed in with its own token) share one stream, and both show the user's notifications", async () => {
    const r = await startRelay(EXAMPLES);
    const context = await browser.newContext();
    try {
      const tabs = [await signedIn(context, r.base, "notifications.html", "ann"), await signedIn(context, r.base, "notifications.html", "ann")];
      expect((await (await fetch(`${r.base}/v1/stats`)).json()).connections).toBe(1);
      expect(await tabs[1].textContent("#status")).toBe("live · follower");
      await publish(r.base, { channel: "user:ann:notifications", data: { text: "to every tab" } }, { Authorization: `Bearer ${(await login(r.base, "ann")).token}` });
      for (const t of tabs) await t.waitForSelector("#inbox li:has-text('to every tab')");
      // The follower asks for another user's channel: refused to it alone; the shared stream goes on.
      await tabs[1].fill("#other", "bob");
      await tabs[1].click("#peek button");
      await tabs[1].waitForSelector("#peekResult.error");
      expect(await tabs[1].textContent("#peekResult")).toMatch(/^refused: 403 forbidden_channel/);
      await publish(r.base, { channel: "user:ann:notifications", data: { text: "and again" } }, { Authorization: `Bearer ${(await login(r.base, "ann")).token}` });
      for (const t of tabs) await t.waitForSelector("#inbox li:has-text('and again')");
      for (const t of tabs) expect(await t.textContent("#status")).toMatch(/^live/);
    } finally {
      await context.close();
      await r.stop();
    }
  });

  it("the notifications page survives a relay restart on the same port, missing nothing published meanwhile", async () => {
    const redis = await RedisServer.start();
    const env = { ...EXAMPLES, REDIS_URL: redis.url };
    const a = await startRelay(env);
    const other = await startRelay(env);
    const context = await browser.newContext();
    let b: Awaited<ReturnType<typeof createRelay>> | undefined;
    try {
      const ann = await signedIn(context, a.base, "notifications.html", "ann");
      const auth = { Authorization: `Bearer ${(await login(a.base, "ann")).token}` };
      await publish(other.base, { channel: "user:ann:notifications", data: { text: "one" } }, auth);
      await ann.waitForSelector("#inbox li:has-text('one')");
      await a.relay.drain(300);
      await ann.waitForSelector("#status.reconnecting");
      await publish(other.base, { channel: "user:ann:notifications", data: { text: "two" } }, auth);
      b = await createRelay(loadConfig({ ...env, PORT: String(a.port), HOST: "127.0.0.1" }));
      await b.listen();
      await ann.waitForSelector("#inbox li:has-text('two')", { timeout: 15_000 });
      await ann.waitForSelector("#status.live");
      await publish(other.base, { channel: "user:ann:notifications", data: { text: "three" } }, auth);
      await ann.waitForSelector("#inbox li:has-text('three')");
      expect((await texts(ann, "#inbox li")).map((t) => t.split(" ").pop())).toEqual(["three", "two", "one"]);
    } finally {
      await context.close();
      await Promise.all([b?.drain(200), other.stop()]);
      await redis.dispose();
    }
  });

  it("cache invalidation: the page's cached data refreshes when a deploy hook fires", async () => {
    const r = await startRelay(EXAMPLES);
    const page = await browser.newPage();
    try {
      await page.goto(`${r.base}/examples/cache.html`);
      await page.waitForSelector("#status.live");
      await page.waitForSelector('#products tr[data-key="product:2"]');
      const version = (key: string) => page.textContent(`#products tr[data-key="${key}"] td:last-child`);
      const before = { p1: await version("product:1"), p2: await version("product:2") };
      const body = JSON.stringify({ keys: ["product:1"], deployId: "deploy-42" });
      const res = await fetch(`${r.base}/v1/hooks/generic`, { method: "POST", headers: { "X-Fanout-Signature": `sha256=${createHmac("sha256", HOOK_SECRET).update(body).digest("hex")}` }, body });
      expect(res.status).toBe(200);
      await page.waitForSelector("#log li:has-text('deploy deploy-42: dropped product:1')");
      await page.waitForFunction((v) => document.querySelector('#products tr[data-key="product:1"] td:last-child')?.textContent !== v, before.p1);
      // Only the invalidated entry was fetched again.
      expect(await version("product:2")).toBe(before.p2);
    } finally {
      await page.close();
      await r.stop();
    }
  });
});

async function login(base: string, user: string): Promise<{ token: string }> {
  const res = await fetch(`${base}/examples/login`, { method: "POST", body: JSON.stringify({ user }) });
  return (await res.json()) as { token: string };
}
