import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { relayFixture } from "../../test/support/relay-harness.js";
import { brokerModes } from "../../test/support/modes.js";
import { loadConfig } from "../config.js";
import { addressBucket } from "../connection-limits.js";
import { TrustedProxies } from "./trusted-proxies.js";

const modes = brokerModes();

type Held = { status: number; body: string; close(): void };

/** One request from a chosen loopback address (all of 127/8 is local on Linux); a stream is held open. */
function from(base: string, localAddress: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Held> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { localAddress, method: body === undefined ? "GET" : "POST", headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      const done = () => resolve({ status: res.statusCode ?? 0, body: text, close: () => req.destroy() });
      if (res.statusCode === 200 && String(res.headers["content-type"]).startsWith("text/event-stream")) return done();
      res.on("data", (c: string) => (text += c));
      res.on("end", done);
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("FANOUT_TRUSTED_PROXIES", () => {
  it("takes addresses, CIDR ranges and the names loopback and private, and refuses anything else at start-up", () => {
    const t = TrustedProxies.parse(["10.0.0.0/8", "192.0.2.7", "fd00::/8", "loopback"]);
    expect(["10.1.2.3", "::ffff:10.9.9.9", "192.0.2.7", "fd12::1", "127.0.0.1", "::1"].map((a) => t.has(a))).toEqual([true, true, true, true, true, true]);
    expect(["11.0.0.1", "192.0.2.8", "fe80::1", "2001:db8::1", "nonsense"].map((a) => t.has(a))).toEqual([false, false, false, false, false]);
    expect(TrustedProxies.parse([]).has("127.0.0.1")).toBe(false);
    for (const bad of ["10.0.0.0/33", "example.com", "10.0.0.1/8/8", "::1/129", "10.0.0.0/x"]) {
      expect(() => loadConfig({ FANOUT_TRUSTED_PROXIES: bad }), bad).toThrow(/FANOUT_TRUSTED_PROXIES: .* is not an IP address/);
    }
  });

  it("defaults the per-address stream limit to a few hundred, far below the relay's total", () => {
    const c = loadConfig({});
    expect(c.maxConnectionsPerIp).toBe(256);
    expect(c.maxConnectionsPerIp).toBeLessThan(c.maxConnections / 10);
    expect(c.trustedProxies.size).toBe(0);
  });

  it("limits IPv6 clients per /64, the block one host is usually given", () => {
    expect(addressBucket("2001:db8:0:1::1")).toBe(addressBucket("2001:db8:0:1:ffff:ffff:ffff:ffff"));
    expect(addressBucket("2001:db8:0:1::1")).not.toBe(addressBucket("2001:db8:0:2::1"));
    expect(addressBucket("192.0.2.1")).toBe("192.0.2.1");
  });
});

describe.each(modes)("client addresses behind proxies on the $name", (mode) => {
  const { start } = relayFixture();
  const held: Held[] = [];
  afterEach(() => held.splice(0).forEach((h) => h.close()));
  const stream = async (base: string, localAddress: string, xff?: string) => {
    const h = await from(base, localAddress, "/v1/events?channel=a", xff === undefined ? {} : { "X-Forwarded-For": xff });
    held.push(h);
    return h.status;
  };

  it("limits per client behind a trusted proxy, walking X-Forwarded-For from the right past trusted hops", async () => {
    const r = await start({ ...mode.env(), FANOUT_MAX_CONNECTIONS_PER_IP: "1", FANOUT_TRUSTED_PROXIES: "127.0.0.5,127.0.0.6" });
    // Two clients behind one proxy are two clients.
    expect(await stream(r.base, "127.0.0.5", "198.51.100.1")).toBe(200);
    expect(await stream(r.base, "127.0.0.5", "198.51.100.2")).toBe(200);
    // What the client wrote left of the proxy's hop is not believed: this is 198.51.100.1 again.
    expect(await stream(r.base, "127.0.0.5", "203.0.113.99, 198.51.100.1")).toBe(429);
    // Two trusted hops (127.0.0.6 forwarded to 127.0.0.5): the client is left of both.
    expect(await stream(r.base, "127.0.0.5", "198.51.100.3, 127.0.0.6")).toBe(200);
    expect(await stream(r.base, "127.0.0.5", "198.51.100.3")).toBe(429);
    // IPv6 clients are limited per /64.
    expect(await stream(r.base, "127.0.0.5", "2001:db8:1:2::10")).toBe(200);
    expect(await stream(r.base, "127.0.0.5", "[2001:db8:1:2::99]:4711")).toBe(429);
  });

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", async () => {
    const r = await start({ ...mode.env(), FANOUT_MAX_CONNECTIONS_PER_IP: "1", FANOUT_TRUSTED_PROXIES: "127.0.0.5" });
    expect(await stream(r.base, "127.0.0.7", "198.51.100.1")).toBe(200);
    expect(await stream(r.base, "127.0.0.7", "198.51.100.2")).toBe(429);
  });

  it("does not let a forwarded address make a remote client local (the keyless loopback publish rule)", async () => {
    const r = await start({ ...mode.env(), FANOUT_TRUSTED_PROXIES: "127.0.0.5" });
    const body = JSON.stringify({ channel: "x", data: 1 });
    const post = (localAddress: string, xff?: string) => from(r.base, localAddress, "/v1/publish", xff === undefined ? {} : { "X-Forwarded-For": xff }, body);
    // A local proxy forwarding a remote client, whatever that client claims to be.
    expect((await post("127.0.0.5", "127.0.0.1, 203.0.113.7")).status).toBe(401);
    expect((await post("127.0.0.5", "203.0.113.7")).status).toBe(401);
    // A local proxy forwarding a local client, and a local client directly (its header ignored).
    expect((await post("127.0.0.5", "127.0.0.1")).status).toBe(200);
    expect((await post("127.0.0.7", "203.0.113.7")).status).toBe(200);
  });
});
