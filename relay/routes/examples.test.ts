import { afterEach, describe, expect, it } from "vitest";
import { startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { SseClient } from "../../test/support/sse-client.js";
import { ConfigError, loadConfig } from "../config.js";

const SECRET = "examples-route-secret-0123456789abcdef";
const LOGIN = { FANOUT_JWT_SECRET: SECRET, FANOUT_EXAMPLES_LOGIN: "on" };

describe("/examples", () => {
  let r: RunningRelay | undefined;
  afterEach(async () => {
    await r?.stop();
    r = undefined;
  });
  const login = (body: unknown, headers: Record<string, string> = {}) => fetch(`${r!.base}/examples/login`, { method: "POST", headers, body: JSON.stringify(body) });

  it("serves the pages and the SDK bundled for them, under a CSP allowing only their own scripts", async () => {
    r = await startRelay();
    for (const [path, type] of [["/examples/", "text/html"], ["/examples/chat.html", "text/html"], ["/examples/chat.js", "text/javascript"], ["/examples/examples.css", "text/css"], ["/examples/fanout-client.js", "text/javascript"]]) {
      const res = await fetch(`${r.base}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type"), path).toContain(type);
      expect(res.headers.get("content-security-policy"), path).toContain("script-src 'self'");
      const text = await res.text();
      if (path.endsWith("fanout-client.js")) expect(text).toMatch(/FanoutClient = class/);
    }
    // Test files beside the pages are not served.
    expect((await fetch(`${r.base}/examples/pages.test.ts`)).status).toBe(404);
  });

  it("the dev login is off by default (404 examples_login_off) and needs FANOUT_JWT_SECRET to be turned on", async () => {
    r = await startRelay();
    const res = await login({ user: "ann" });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("examples_login_off");
    expect(() => loadConfig({ FANOUT_EXAMPLES_LOGIN: "on" })).toThrow(ConfigError);
    expect(() => loadConfig({ FANOUT_EXAMPLES_LOGIN: "yes", FANOUT_JWT_SECRET: SECRET })).toThrow(/FANOUT_EXAMPLES_LOGIN must be on or off/);
  });

  it("mints a token that opens the user's own channels and not another user's; refuses bad names and non-loopback callers", async () => {
    r = await startRelay({ ...LOGIN, FANOUT_TRUSTED_PROXIES: "127.0.0.1" });
    const res = await login({ user: "ann" });
    expect(res.status).toBe(200);
    const { token, user } = (await res.json()) as { token: string; user: string };
    expect(user).toBe("ann");
    const own = await SseClient.open(`${r.base}/v1/events?channel=user:ann:notifications`, { Authorization: `Bearer ${token}` });
    own.close();
    const other = await fetch(`${r.base}/v1/events?channel=user:bob:notifications`, { headers: { Authorization: `Bearer ${token}` } });
    expect(other.status).toBe(403);
    await other.body?.cancel();
    for (const bad of [{ user: "" }, { user: "a b" }, { user: "x".repeat(33) }, { name: "ann" }, "ann", null]) {
      const b = await login(bad);
      expect(b.status, JSON.stringify(bad)).toBe(400);
    }
    // Behind a trusted proxy, a remote browser is not a loopback caller.
    const remote = await login({ user: "ann" }, { "X-Forwarded-For": "203.0.113.9" });
    expect(remote.status).toBe(403);
    expect(((await remote.json()) as { error: { code: string } }).error.code).toBe("examples_login_remote");
  });
});
