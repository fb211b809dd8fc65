import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../test/support/browser.js";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { publish } from "../test/support/sse-client.js";

type Got = Array<[channel: string, data: unknown, pattern: string | null]>;
type TabWindow = {
  SDK: typeof import("./index.js");
  client: InstanceType<typeof import("./index.js").FanoutClient>;
  got: Got;
  ready: number;
  statuses: string[];
};

/** A page of the relay's origin with the SDK the relay serves to its example pages, and one client in it. */
async function openTab(context: BrowserContext, base: string, names: { channels?: string[]; patterns?: string[] }): Promise<Page> {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("[tab]", e.message));
  await page.goto(`${base}/examples/`);
  // A string, not a function: the test's own transform would rewrite a dynamic import().
  await page.evaluate("import('/examples/fanout-client.js').then((m) => { window.SDK = m; })");
  await page.evaluate(
    ({ url, names }) => {
      const w = window as unknown as TabWindow;
      w.got = [];
      w.ready = 0;
      w.statuses = [];
      w.client = new w.SDK.FanoutClient({ url, ...names, backoff: { initialMs: 50, maxMs: 300 } });
      w.client.on("*", (m) => w.got.push([m.channel, m.data, m.pattern ?? null]));
      w.client.onReady(() => w.ready++);
      w.client.onStatus((s) => w.statuses.push(s));
    },
    { url: base, names },
  );
  return page;
}

const got = (p: Page) => p.evaluate(() => (window as unknown as TabWindow).got);
const role = (p: Page) => p.evaluate(() => (window as unknown as TabWindow).client.tabRole);

async function connections(base: string): Promise<number> {
  return ((await (await fetch(`${base}/v1/stats`)).json()) as { connections: number }).connections;
}

async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// Seven tabs: five with one channel each, one with a channel and the pattern over all of
// them, one with two channels and a pattern that overlaps one of them.
const TABS = [
  { channels: ["t:0"] },
  { channels: ["t:1"] },
  { channels: ["t:2"] },
  { channels: ["t:3"] },
  { channels: ["t:4"] },
  { channels: ["t:5"], patterns: ["t:*"] },
  { channels: ["t:6", "t:0"], patterns: ["t:[0-3]"] },
];

/** What tab `i` must receive of the message numbered `k` (on channel `t:<k % 7>`), and with which `pattern`. */
function expected(i: number, k: number): [string, number, string | null] | undefined {
  const channel = `t:${k % 7}`;
  const spec = TABS[i];
  if (spec.channels.includes(channel)) return [channel, k, null];
  if (i === 5) return [channel, k, "t:*"];
  if (i === 6 && k % 7 <= 3) return [channel, k, "t:[0-3]"];
  return undefined;
}

describe("tab sharing in a real browser (headless Chromium)", () => {
  let browser: Browser;
  let r: RunningRelay;
  beforeAll(async () => {
    [browser, r] = await Promise.all([launchChromium(), startRelay({ FANOUT_RETRY_MS: "100" })]);
  });
  afterAll(async () => {
    await browser?.close();
    await r?.stop();
  });

  it("seven tabs of one origin share one stream, each gets exactly its own messages once, and the leader's tab closing mid-stream loses nothing", async () => {
    const context = await browser.newContext();
    try {
      // Over HTTP/1.1 a seventh stream to one origin would wait for one of six to close.
      const tabs: Page[] = [];
      for (const spec of TABS) tabs.push(await openTab(context, r.base, spec));
      for (const t of tabs) await t.waitForFunction(() => (window as unknown as TabWindow).ready >= 1);
      await until("one stream", async () => (await connections(r.base)) === 1);
      const roles = await Promise.all(tabs.map(role));
      expect(roles.filter((x) => x === "leader")).toHaveLength(1);
      expect(roles.filter((x) => x === "follower")).toHaveLength(6);
      const leader = roles.indexOf("leader");

      // Messages keep coming while the leader's tab closes; one channel nobody follows.
      const N = 70;
      let closing: Promise<void> | undefined;
      for (let k = 0; k < N; k++) {
        await publish(r.base, { channel: `t:${k % 7}`, data: k });
        if (k % 10 === 0) await publish(r.base, { channel: "u:1", data: -k });
        if (k === 25) closing = tabs[leader].close();
        if (k % 5 === 0) await new Promise((x) => setTimeout(x, 10));
      }
      await closing;
      const rest = tabs.map((t, i) => ({ t, i })).filter(({ i }) => i !== leader);
      for (const { t, i } of rest) {
        const want = Array.from({ length: N }, (_, k) => expected(i, k)).filter((x) => x !== undefined);
        await until(`tab ${i}'s ${want.length} messages`, async () => (await got(t)).length >= want.length);
      }
      // A moment for anything duplicated to show up.
      await new Promise((x) => setTimeout(x, 200));
      for (const { t, i } of rest) {
        const want = Array.from({ length: N }, (_, k) => expected(i, k)).filter((x) => x !== undefined);
        const have = await got(t);
        // Per channel in publish order (channels' order among each other may differ after the takeover's replay).
        const byK = (a: Got[number], b: Got[number]) => (a[1] as number) - (b[1] as number);
        expect([...have].sort(byK), `tab ${i}`).toEqual(want);
        for (const ch of new Set(have.map((m) => m[0]))) {
          const ks = have.filter((m) => m[0] === ch).map((m) => m[1] as number);
          expect(ks, `tab ${i} ${ch}`).toEqual([...ks].sort((a, b) => a - b));
        }
      }
      // Another tab took over: still one stream.
      await until("one stream after the takeover", async () => (await connections(r.base)) === 1);
      const after = await Promise.all(rest.map(({ t }) => role(t)));
      expect(after.filter((x) => x === "leader")).toHaveLength(1);
      for (const { t } of rest) {
        const statuses = await t.evaluate(() => (window as unknown as TabWindow).statuses);
        expect(statuses.at(-1)).toBe("live");
      }
    } finally {
      await context.close();
    }
  });

  it("a follower tab subscribes and unsubscribes on the live shared stream, without a reconnection", async () => {
    const context = await browser.newContext();
    try {
      const a = await openTab(context, r.base, { channels: ["d:a"] });
      await a.waitForFunction(() => (window as unknown as TabWindow).ready >= 1);
      const b = await openTab(context, r.base, { channels: ["d:b"] });
      await b.waitForFunction(() => (window as unknown as TabWindow).ready >= 1);
      expect(await role(a)).toBe("leader");
      expect(await role(b)).toBe("follower");
      const connection = await a.evaluate(() => (window as unknown as TabWindow).client.connectionId);

      const ack = await b.evaluate(async () => {
        const info = await (window as unknown as TabWindow).client.subscribe({ channels: ["d:new"], patterns: ["d:p:*"] });
        return info;
      });
      expect(ack.added).toEqual({ channels: ["d:new"], patterns: ["d:p:*"] });
      expect(ack.channels).toEqual(["d:b", "d:new"]);
      await publish(r.base, { channel: "d:new", data: "added" });
      await publish(r.base, { channel: "d:p:1", data: "by pattern" });
      await publish(r.base, { channel: "d:a", data: "for a" });
      await b.waitForFunction(() => (window as unknown as TabWindow).got.length === 2);
      await a.waitForFunction(() => (window as unknown as TabWindow).got.length === 1);

      await b.evaluate(() => (window as unknown as TabWindow).client.unsubscribe({ channels: ["d:new"] }));
      await publish(r.base, { channel: "d:new", data: "after unsubscribe" });
      await publish(r.base, { channel: "d:b", data: "marker" });
      await b.waitForFunction(() => (window as unknown as TabWindow).got.length === 3);
      expect(await got(b)).toEqual([
        ["d:new", "added", null],
        ["d:p:1", "by pattern", "d:p:*"],
        ["d:b", "marker", null],
      ]);
      expect(await got(a)).toEqual([["d:a", "for a", null]]);
      // The same stream all along.
      expect(await a.evaluate(() => (window as unknown as TabWindow).client.connectionId)).toBe(connection);
      await until("one stream", async () => (await connections(r.base)) === 1);

      // The leader's client closes (its tab stays): the follower takes the stream over.
      await a.evaluate(() => (window as unknown as TabWindow).client.close());
      await b.waitForFunction(() => (window as unknown as TabWindow).client.tabRole === "leader");
      await publish(r.base, { channel: "d:b", data: "after the handover" });
      await b.waitForFunction(() => (window as unknown as TabWindow).got.length === 4);
      expect((await got(b))[3]).toEqual(["d:b", "after the handover", null]);
      await until("one stream after the handover", async () => (await connections(r.base)) === 1);
    } finally {
      await context.close();
    }
  });

  it("a message broadcast again (as a closing leader's last broadcasts may overlap its successor's resume) is delivered once", async () => {
    const context = await browser.newContext();
    try {
      const a = await openTab(context, r.base, { channels: ["o:x"] });
      await a.waitForFunction(() => (window as unknown as TabWindow).ready >= 1);
      const b = await openTab(context, r.base, { channels: ["o:x"] });
      await b.waitForFunction(() => (window as unknown as TabWindow).ready >= 1);
      expect(await role(b)).toBe("follower");
      // Another listener on the group's channel, in b's page, records what the leader sends.
      await b.evaluate((group) => {
        const w = window as unknown as { heard: unknown[]; bc: BroadcastChannel };
        w.heard = [];
        w.bc = new BroadcastChannel(group);
        w.bc.onmessage = (e) => w.heard.push(e.data);
      }, `fanout:${r.base}`);
      await publish(r.base, { channel: "o:x", data: 1 });
      await b.waitForFunction(() => (window as unknown as TabWindow).got.length === 1);
      // The same message again on the group's channel, then a new one.
      await b.evaluate(() => {
        const w = window as unknown as { heard: Array<{ t: string }>; bc: BroadcastChannel };
        for (const m of w.heard.filter((m) => m.t === "event")) w.bc.postMessage(m);
      });
      await publish(r.base, { channel: "o:x", data: 2 });
      await b.waitForFunction(() => (window as unknown as TabWindow).got.length >= 2);
      await new Promise((x) => setTimeout(x, 100));
      expect(await got(b)).toEqual([
        ["o:x", 1, null],
        ["o:x", 2, null],
      ]);
    } finally {
      await context.close();
    }
  });

  it("malformed messages on the group's channel (another script, another SDK version) are ignored: tabs still join and receive", async () => {
    const context = await browser.newContext();
    try {
      const a = await openTab(context, r.base, { channels: ["m:a"] });
      await a.waitForFunction(() => (window as unknown as TabWindow).ready >= 1);
      expect(await role(a)).toBe("leader");
      const thrown: string[] = [];
      a.on("pageerror", (e) => thrown.push(e.message));
      await a.evaluate((group) => {
        const bc = new BroadcastChannel(group);
        for (const m of [null, 7, "hello", {}, { t: "hello", from: "x" }, { t: "hello", from: "y", channels: "m:a", patterns: [] }, { t: "want", from: "z", request: "r", channels: [1], patterns: [] }, { t: "event", from: "x" }, { t: "event", from: "x", envelope: null, type: "message", data: "", id: "1" }, { t: "ready", from: "x" }, { t: "ack", from: "x", to: 3 }, { t: "error", from: "x", error: null, fatal: true }]) bc.postMessage(m);
        bc.close();
      }, `fanout:${r.base}`);
      // A second tab joins the group after them, and both get their messages.
      const b = await openTab(context, r.base, { channels: ["m:b"] });
      await b.waitForFunction(() => (window as unknown as TabWindow).ready >= 1);
      expect(await role(b)).toBe("follower");
      await publish(r.base, { channel: "m:a", data: "for a" });
      await publish(r.base, { channel: "m:b", data: "for b" });
      await a.waitForFunction(() => (window as unknown as TabWindow).got.length === 1);
      await b.waitForFunction(() => (window as unknown as TabWindow).got.length === 1);
      expect(await got(a)).toEqual([["m:a", "for a", null]]);
      expect(await got(b)).toEqual([["m:b", "for b", null]]);
      expect(await a.evaluate(() => (window as unknown as TabWindow).statuses.at(-1))).toBe("live");
      expect(thrown).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("status, ready and reset reach every tab when the shared stream's relay restarts", async () => {
    const r2 = await startRelay({ FANOUT_RETRY_MS: "100" });
    const context = await browser.newContext();
    let again: RunningRelay | undefined;
    try {
      const a = await openTab(context, r2.base, { channels: ["s:a"] });
      await a.waitForFunction(() => (window as unknown as TabWindow).ready >= 1);
      const b = await openTab(context, r2.base, { channels: ["s:b"] });
      await b.evaluate(() => {
        const w = window as unknown as TabWindow & { resets: string[] };
        w.resets = [];
        w.client.onReset((reason) => w.resets.push(reason));
      });
      await b.waitForFunction(() => (window as unknown as TabWindow).ready >= 1);
      await publish(r2.base, { channel: "s:b", data: 1 });
      await b.waitForFunction(() => (window as unknown as TabWindow).got.length === 1);
      // The embedded broker's log goes with the process: the new one cannot resume the old cursor.
      await r2.relay.drain(200);
      await b.waitForFunction(() => (window as unknown as TabWindow).statuses.includes("reconnecting"));
      again = await startRelay({ FANOUT_RETRY_MS: "100", PORT: String(r2.port) });
      await b.waitForFunction(() => (window as unknown as TabWindow).ready >= 2, undefined, { timeout: 15_000 });
      await publish(again.base, { channel: "s:b", data: 2 });
      await b.waitForFunction(() => (window as unknown as TabWindow).got.length === 2);
      const seen = await b.evaluate(() => {
        const w = window as unknown as TabWindow & { resets: string[] };
        return { statuses: w.statuses, resets: w.resets, role: w.client.tabRole };
      });
      expect(seen.role).toBe("follower");
      expect(seen.statuses).toEqual(["connecting", "live", "reconnecting", "live"]);
      expect(seen.resets.length).toBeGreaterThan(0);
    } finally {
      await context.close();
      await again?.stop();
    }
  });

  // Options as page-side source text: functions cannot travel as evaluate() arguments.
  for (const [what, setup, opts, streams] of [
    ["shareTabs: false opens a stream per client", "", "{ shareTabs: false }", 2],
    ["without BroadcastChannel each client opens its own stream", "window.BroadcastChannel = undefined", "{}", 2],
    ["without Web Locks each client opens its own stream", "Object.defineProperty(navigator, 'locks', { value: undefined })", "{}", 2],
    ["a client whose credential is a function (it could be anyone's) shares only when told", "", "{ headers: () => ({}) }", 2],
    ["shareTabs: { group } shares whatever the credential", "", "{ headers: () => ({}), shareTabs: { group: 'ann' } }", 1],
  ] as const) {
    it(what, async () => {
      const context = await browser.newContext();
      try {
        const pages = [await context.newPage(), await context.newPage()];
        for (const p of pages) {
          await p.goto(`${r.base}/examples/`);
          if (setup) await p.evaluate(setup);
          await p.evaluate("import('/examples/fanout-client.js').then((m) => { window.SDK = m; })");
          await p.evaluate(`window.ready = 0; window.client = new window.SDK.FanoutClient({ url: ${JSON.stringify(r.base)}, channels: ["solo"], ...${opts} }); window.client.onReady(() => window.ready++);`);
          await p.waitForFunction(() => (window as unknown as TabWindow).ready >= 1);
        }
        const roles = await Promise.all(pages.map(role));
        expect(roles).toEqual(streams === 1 ? ["leader", "follower"] : [undefined, undefined]);
        // (Streams of the tests before may take a moment to be gone.)
        await until(`${streams} stream(s)`, async () => (await connections(r.base)) === streams);
      } finally {
        await context.close();
      }
    });
  }
});
