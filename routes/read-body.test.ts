import { describe, expect, it } from "vitest";
import { relayFixture } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";
import { chunk, rawConnections } from "../test/support/raw-http.js";
import { signFanoutToken } from "../protocol/auth/sign-token.js";

const modes = brokerModes();
const KEY = "pk-body";
const LIMIT = 4096;
const JWT_SECRET = "body-test-secret-0123456789abcdef";

/** Request head for a chunked POST: the body follows in chunks, and may never end. */
const chunkedPost = (path: string, auth?: string) =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n${auth ? `Authorization: Bearer ${auth}\r\n` : ""}\r\n`;

describe.each(modes)("request bodies on the $name", (mode) => {
  const { start, open } = relayFixture();
  const connect = rawConnections();
  const relay = () =>
    start({ ...mode.env(), FANOUT_PUBLISH_KEYS: KEY, FANOUT_MAX_BODY_BYTES: String(LIMIT), FANOUT_HOOK_SECRET: "hook-secret" });

  it("answers 413 at the first chunk over FANOUT_MAX_BODY_BYTES, while the body is still being sent", async () => {
    const r = await relay();
    for (const path of ["/v1/publish", "/v1/invalidate", "/v1/hooks/generic"]) {
      const c = await connect(r.port);
      await c.write(chunkedPost(path, KEY));
      // Past the limit, and the body never ends: only a reader that counts can answer.
      for (let sent = 0; sent <= LIMIT; sent += 1000) await c.write(chunk("x".repeat(1000)));
      await c.waitFor((t) => t.includes("payload_too_large"), `413 from ${path}`);
      expect(c.statuses(), path).toEqual([413]);
      expect(c.text).not.toMatch(/^0\r\n/m);
    }
    expect((await fetch(`${r.base}/healthz`)).status).toBe(200);
  });

  it("refuses a sender without credentials before reading its body", async () => {
    const r = await relay();
    for (const [path, auth] of [
      ["/v1/publish", undefined],
      ["/v1/invalidate", undefined],
      ["/v1/tickets", undefined],
      ["/v1/publish", "not-the-key"],
    ] as const) {
      const c = await connect(r.port);
      await c.write(chunkedPost(path, auth) + chunk("{"));
      await c.waitFor((t) => t.includes("unauthorized"), `401 from ${path}`);
      expect(c.statuses(), path).toEqual([401]);
    }
  });

  it("still reads a chunked body under the limit in full, and publishes it", async () => {
    const r = await relay();
    const sub = await open("channel=chunky");
    await sub.waitReady();
    const data = "y".repeat(LIMIT - 100);
    const body = JSON.stringify({ channel: "chunky", data });
    const c = await connect(r.port);
    await c.write(chunkedPost("/v1/publish", KEY));
    for (let i = 0; i < body.length; i += 700) await c.write(chunk(body.slice(i, i + 700)));
    await c.write("0\r\n\r\n");
    await c.waitFor((t) => t.includes('"id"'), "the publish result");
    expect(c.statuses()).toEqual([200]);
    await sub.waitMessages(1);
    expect(sub.envelopes()[0].data).toBe(data);
  });

  it("reads a body that arrived whole with its head (several chunks, pipelined requests) like one that trickles in", async () => {
    const r = await relay();
    const sub = await open("channel=whole");
    await sub.waitReady();
    const data = "z".repeat(LIMIT - 100);
    const body = JSON.stringify({ channel: "whole", data });
    let chunks = "";
    for (let i = 0; i < body.length; i += 700) chunks += chunk(body.slice(i, i + 700));
    const small = JSON.stringify({ channel: "whole", data: 2 });
    const over = "x".repeat(LIMIT + 1);
    const c = await connect(r.port);
    // One write: each request is parsed in full before its route reads the body.
    await c.write(
      chunkedPost("/v1/publish", KEY) + chunks + "0\r\n\r\n" +
        `POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: ${small.length}\r\n\r\n${small}` +
        chunkedPost("/v1/publish", KEY) + chunk(over) + "0\r\n\r\n",
    );
    await c.waitFor((t) => t.includes("payload_too_large"), "the third answer");
    expect(c.statuses()).toEqual([200, 200, 413]);
    await sub.waitMessages(2);
    expect(sub.envelopes().map((e) => e.data)).toEqual([data, 2]);
  });

  it("publishes pipelined requests in the order sent, when the first takes longer to authorize", async () => {
    const r = await start({ ...mode.env(), FANOUT_PUBLISH_KEYS: KEY, FANOUT_JWT_SECRET: JWT_SECRET, FANOUT_PUBLIC_CHANNELS: "turns" });
    const sub = await open("channel=turns");
    await sub.waitReady();
    // A JWT is verified asynchronously (WebCrypto); a publish key is compared at once. A relay
    // that handled pipelined requests concurrently would publish the second before the first.
    const token = await signFanoutToken(JWT_SECRET, { publish: ["turns"] });
    const post = (auth: string, data: string) => {
      const body = JSON.stringify({ channel: "turns", data });
      return `POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${auth}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    };
    const c = await connect(r.port);
    await c.write(post(token, "first") + post(KEY, "second") + post(token, "third") + post(KEY, "fourth"));
    await c.waitFor((t) => t.split('"id"').length === 5, "four publish results");
    expect(c.statuses()).toEqual([200, 200, 200, 200]);
    await sub.waitMessages(4);
    expect(sub.envelopes().map((e) => e.data)).toEqual(["first", "second", "third", "fourth"]);
  });

  it("answers 400 for broken chunked framing and stays up", async () => {
    const r = await relay();
    const c = await connect(r.port);
    await c.write(chunkedPost("/v1/publish", KEY) + "zz\r\nnot hex\r\n");
    await c.waitClosed();
    expect(c.statuses()).toEqual([400]);
    expect((await fetch(`${r.base}/healthz`)).status).toBe(200);
  });
});
