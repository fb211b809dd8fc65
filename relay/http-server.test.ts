import { describe, expect, it } from "vitest";
import { publish } from "../test/support/sse-client.js";
import { relayFixture } from "../test/support/relay-harness.js";
import { brokerModes } from "../test/support/modes.js";
import { rawConnections } from "../test/support/raw-http.js";

const modes = brokerModes();
const KEY = "pk-timeouts";

describe.each(modes)("the HTTP server on the $name", (mode) => {
  const { start, open } = relayFixture();
  const connect = rawConnections();

  it("answers 408 request_timeout to a body or headers that do not arrive in time, while streams stay open past it", async () => {
    const r = await start({ ...mode.env(), FANOUT_PUBLISH_KEYS: KEY, FANOUT_REQUEST_TIMEOUT_MS: "1000" });
    const stream = await open("channel=long");
    await stream.waitReady();
    const slowBody = await connect(r.port);
    await slowBody.write(`POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: 100\r\n\r\n{"chan`);
    const slowHeaders = await connect(r.port);
    await slowHeaders.write("GET /v1/stats HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    for (const c of [slowBody, slowHeaders]) {
      await c.waitClosed();
      expect(c.statuses()).toEqual([408]);
      expect(c.errorCodes()).toEqual(["request_timeout"]);
    }
    // The stream outlived the request timeout and still delivers.
    expect((await publish(r.base, { channel: "long", data: "still here" }, { Authorization: `Bearer ${KEY}` })).status).toBe(200);
    await stream.waitMessages(1);
    expect(stream.closed).toBe(false);
  });

  it("answers malformed requests with the API's JSON error shape and a code", async () => {
    const r = await start(mode.env());
    for (const [req, status, code] of [
      ["NOT HTTP AT ALL\r\n\r\n", 400, "bad_request"],
      ["GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "bad_request"],
      [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`, 431, "headers_too_large"],
    ] as const) {
      const c = await connect(r.port);
      await c.write(req);
      await c.waitClosed();
      expect(c.statuses(), req.slice(0, 40)).toEqual([status]);
      expect(c.errorCodes()).toEqual([code]);
    }
    expect((await fetch(`${r.base}/healthz`)).status).toBe(200);
  });
});
