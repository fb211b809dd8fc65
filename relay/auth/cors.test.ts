import { afterEach, describe, expect, it } from "vitest";
import { SseClient, publish } from "../../test/support/sse-client.js";
import { startRelay, type RunningRelay } from "../../test/support/relay-harness.js";
import { loadConfig } from "../config.js";

const APP = "https://app.example";
const KEY = "pk-cors";

async function preflight(base: string, path: string, method: string, origin = APP): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: "OPTIONS",
    headers: { Origin: origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": "authorization,content-type,last-event-id" },
  });
}

describe("CORS (FANOUT_CORS_ORIGINS)", () => {
  let r: RunningRelay;
  const clients: SseClient[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    await r?.stop();
  });

  it("answers preflights for publish, tickets and SSE from a listed origin, with credentials", async () => {
    r = await startRelay({ FANOUT_CORS_ORIGINS: `${APP},https://other.example`, FANOUT_PUBLISH_KEYS: KEY });
    for (const [path, method] of [["/v1/publish", "POST"], ["/v1/tickets", "POST"], ["/v1/events?channel=a", "GET"]]) {
      const res = await preflight(r.base, path, method);
      expect(res.status, path).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe(APP);
      expect(res.headers.get("access-control-allow-credentials")).toBe("true");
      expect(res.headers.get("access-control-allow-methods")).toContain(method);
      expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
      expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("last-event-id");
      expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("traceparent");
      expect(res.headers.get("vary")).toBe("Origin, Access-Control-Request-Headers");
    }
    const evil = await preflight(r.base, "/v1/publish", "POST", "https://evil.example");
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("puts the headers on publish responses, errors included, and on the SSE stream", async () => {
    r = await startRelay({ FANOUT_CORS_ORIGINS: APP, FANOUT_PUBLISH_KEYS: KEY });
    const ok = await publish(r.base, { channel: "a", data: 1 }, { Origin: APP, Authorization: `Bearer ${KEY}` });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe(APP);
    expect(ok.headers.get("access-control-allow-credentials")).toBe("true");
    expect(ok.headers.get("access-control-expose-headers")).toContain("Retry-After");
    expect(ok.headers.get("vary")).toBe("Origin");
    const denied = await publish(r.base, { channel: "a", data: 1 }, { Origin: APP });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("access-control-allow-origin")).toBe(APP);

    const sse = await SseClient.open(`${r.base}/v1/events?channel=a`, { Origin: APP });
    clients.push(sse);
    await sse.waitReady();
    expect(sse.headers["access-control-allow-origin"]).toBe(APP);
    expect(sse.headers["access-control-allow-credentials"]).toBe("true");
    expect(sse.headers["vary"]).toBe("Origin");
    const foreign = await SseClient.open(`${r.base}/v1/events?channel=a`, { Origin: "https://evil.example" });
    clients.push(foreign);
    await foreign.waitReady();
    expect(foreign.headers["access-control-allow-origin"]).toBeUndefined();
    const bad = await SseClient.open(`${r.base}/v1/events`, { Origin: APP });
    clients.push(bad);
    await bad.waitClosed();
    expect(bad.status).toBe(400);
    expect(bad.headers["access-control-allow-origin"]).toBe(APP);
  });

  it("answers * without credentials, and nothing when unset", async () => {
    r = await startRelay({ FANOUT_CORS_ORIGINS: "*" });
    const star = await preflight(r.base, "/v1/events?channel=a", "GET", "https://anyone.example");
    expect(star.headers.get("access-control-allow-origin")).toBe("*");
    expect(star.headers.get("access-control-allow-credentials")).toBeNull();
    const sse = await SseClient.open(`${r.base}/v1/events?channel=a`, { Origin: "https://anyone.example" });
    clients.push(sse);
    await sse.waitReady();
    expect(sse.headers["access-control-allow-origin"]).toBe("*");
    await r.stop();

    r = await startRelay({});
    const none = await preflight(r.base, "/v1/publish", "POST");
    expect(none.headers.get("access-control-allow-origin")).toBeNull();
    expect((await publish(r.base, { channel: "a", data: 1 }, { Origin: APP })).headers.get("access-control-allow-origin")).toBeNull();
  });

  it("refuses * mixed with origins, and origins with a path, at start-up", () => {
    expect(() => loadConfig({ FANOUT_CORS_ORIGINS: `*,${APP}` })).toThrow(/alone/);
    expect(() => loadConfig({ FANOUT_CORS_ORIGINS: `${APP}/` })).toThrow(/origins/);
  });
});
