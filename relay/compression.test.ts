import { spawn } from "node:child_process";
import { constants, gunzipSync, inflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { relayFixture } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";
import { rawConnections, type RawConnection } from "../test/support/raw-http.js";
import { publish } from "../test/support/sse-client.js";
import { launchChromium } from "../test/support/browser.js";

const modes = brokerModes();

const streamRequest = (qs: string, acceptEncoding?: string) =>
  `GET /v1/events?${qs} HTTP/1.1\r\nHost: x\r\n${acceptEncoding !== undefined ? `Accept-Encoding: ${acceptEncoding}\r\n` : ""}\r\n`;

/** The head (lower-cased header names) and the raw body bytes received so far. */
function split(raw: RawConnection): { head: string; body: Buffer } {
  const all = Buffer.from(raw.text, "latin1");
  const end = all.indexOf("\r\n\r\n");
  return end < 0 ? { head: "", body: Buffer.alloc(0) } : { head: all.subarray(0, end).toString("latin1").toLowerCase(), body: all.subarray(end + 4) };
}

/** Everything a gzip body decodes to so far, without waiting for its end (a browser reads it the same way). */
function decodedSoFar(raw: RawConnection): string {
  const { body } = split(raw);
  if (body.length < 10) return "";
  expect([...body.subarray(0, 3)]).toEqual([0x1f, 0x8b, 8]);
  return inflateRawSync(body.subarray(10), { finishFlush: constants.Z_SYNC_FLUSH }).toString();
}

async function waitDecoded(raw: RawConnection, test: (t: string) => boolean, what: string): Promise<string> {
  await raw.waitFor(() => test(decodedSoFar(raw)), what);
  return decodedSoFar(raw);
}

describe.each(modes)("compressed streams (FANOUT_COMPRESSION=gzip) on the $name", (mode) => {
  const { start } = relayFixture();
  const connect = rawConnections();

  it("sends each event gzip-compressed and decodable at once to every client that accepts gzip, whatever mix of channels it gets", async () => {
    const r = await start({ ...mode.env(), FANOUT_COMPRESSION: "gzip" });
    const onlyA = await connect(r.port);
    const both = await connect(r.port);
    await onlyA.write(streamRequest("channel=za", "gzip, deflate, br"));
    await both.write(streamRequest("channel=za&channel=zb", "gzip"));
    for (const c of [onlyA, both]) {
      await waitDecoded(c, (t) => t.includes("event: ready"), "ready");
      expect(split(c).head).toContain("content-encoding: gzip");
      expect(split(c).head).toMatch(/vary: .*accept-encoding/);
    }
    const big = { rows: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `row ${i}`, ok: i % 2 === 0 })) };
    const sent: Array<[string, unknown]> = [["za", "first"], ["zb", "only for both"], ["za", big], ["zb", 3], ["za", "last"]];
    for (const [channel, data] of sent) {
      expect((await publish(r.base, { channel, data })).status).toBe(200);
      // Each event decodes before the next is published: nothing waits in a compressor.
      const marker = JSON.stringify(data);
      await waitDecoded(both, (t) => t.includes(marker), `${marker.slice(0, 40)} on the two-channel stream`);
      if (channel === "za") await waitDecoded(onlyA, (t) => t.includes(marker), `${marker.slice(0, 40)} on the one-channel stream`);
    }
    const dataOf = (t: string) => [...t.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1])).filter((e) => "channel" in e).map((e) => e.data);
    expect(dataOf(decodedSoFar(both))).toEqual(sent.map(([, d]) => d));
    expect(dataOf(decodedSoFar(onlyA))).toEqual(sent.filter(([c]) => c === "za").map(([, d]) => d));
    // The big message went over the wire compressed.
    expect(split(onlyA).body.length).toBeLessThan(JSON.stringify(big).length / 3);
  });

  it("ends a compressed stream as a complete gzip member (final block, CRC and length) when the relay drains", async () => {
    const r = await start({ ...mode.env(), FANOUT_COMPRESSION: "gzip" });
    const c = await connect(r.port);
    await c.write(streamRequest("channel=zend", "gzip"));
    await waitDecoded(c, (t) => t.includes("event: ready"), "ready");
    expect((await publish(r.base, { channel: "zend", data: "before the end" })).status).toBe(200);
    await waitDecoded(c, (t) => t.includes("before the end"), "the message");
    await r.relay.drain(2000);
    await c.waitClosed();
    expect(gunzipSync(split(c).body).toString()).toContain("before the end");
  });

  it("sends plain streams to clients that do not accept gzip, and to everyone when compression is off (the default)", async () => {
    const on = await start({ ...mode.env(), FANOUT_COMPRESSION: "gzip" });
    const off = await start(mode.env());
    for (const [port, accept] of [[on.port, undefined], [on.port, "gzip;q=0, deflate"], [on.port, "br"], [off.port, "gzip"]] as const) {
      const c = await connect(port);
      await c.write(streamRequest("channel=plain", accept));
      await c.waitFor((t) => t.includes("event: ready"), `a plain ready event (${accept} to ${port === on.port ? "gzip" : "off"})`);
      expect(split(c).head).not.toContain("content-encoding");
    }
  });
});

describe("compressed streams in real clients", () => {
  const { start } = relayFixture();
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it("Chromium's EventSource gets every event of a gzip stream as it is published", async () => {
    const r = await start({ FANOUT_COMPRESSION: "gzip" });
    const page = await browser.newPage();
    try {
      const encodings: string[] = [];
      page.on("response", (res) => {
        if (res.url().includes("/v1/events")) encodings.push(res.headers()["content-encoding"] ?? "none");
      });
      await page.goto(`${r.base}/healthz`);
      await page.evaluate(() => {
        const w = window as unknown as { got: string[]; ready: boolean };
        w.got = [];
        const es = new EventSource("/v1/events?channel=browser");
        es.addEventListener("ready", () => (w.ready = true));
        es.addEventListener("message", (e) => w.got.push(JSON.parse((e as MessageEvent).data).data));
      });
      await page.waitForFunction(() => (window as unknown as { ready: boolean }).ready === true);
      for (let i = 0; i < 5; i++) {
        expect((await publish(r.base, { channel: "browser", data: `event ${i}` })).status).toBe(200);
        // Arrives before anything else is sent after it.
        await page.waitForFunction((n) => (window as unknown as { got: string[] }).got.length === n, i + 1);
      }
      expect(await page.evaluate(() => (window as unknown as { got: string[] }).got)).toEqual([0, 1, 2, 3, 4].map((i) => `event ${i}`));
      expect(encodings).toEqual(["gzip"]);
    } finally {
      await page.close();
    }
  });

  it("curl --compressed prints every event of a gzip stream as it is published", async () => {
    const r = await start({ FANOUT_COMPRESSION: "gzip" });
    const curl = spawn("curl", ["-sSvN", "--compressed", `${r.base}/v1/events?channel=curl`], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let head = "";
    curl.stdout.on("data", (d: Buffer) => (out += d.toString()));
    curl.stderr.on("data", (d: Buffer) => (head += d.toString()));
    const waitOut = async (s: string) => {
      for (let i = 0; i < 300 && !out.includes(s); i++) await new Promise((res) => setTimeout(res, 50));
      expect(out).toContain(s);
    };
    try {
      await waitOut("event: ready");
      expect(head.toLowerCase()).toContain("< content-encoding: gzip");
      for (let i = 0; i < 3; i++) {
        expect((await publish(r.base, { channel: "curl", data: `curl ${i}` })).status).toBe(200);
        await waitOut(`"data":"curl ${i}"`);
      }
    } finally {
      curl.kill();
    }
  });
});
