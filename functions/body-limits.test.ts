import { describe, expect, it } from "vitest";
import worker from "./index.js";
import { PUBLISH_KEY, testEnv } from "./test/helpers.js";

/** A request body that never ends: each pull adds `size` bytes. Counts what the route pulled. */
function endlessBody(size: number): { stream: ReadableStream<Uint8Array>; pulled(): number } {
  let pulled = 0;
  const chunk = new TextEncoder().encode("x".repeat(size));
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled += size;
      controller.enqueue(chunk);
    },
  });
  return { stream, pulled: () => pulled };
}

async function post(env: Record<string, string>, path: string, body: ReadableStream<Uint8Array>, key?: string): Promise<{ status: number; code: string }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key) headers.authorization = `Bearer ${key}`;
  const res = await worker.fetch(new Request(`https://fanout.test${path}`, { method: "POST", headers, body, duplex: "half" } as RequestInit), env);
  return { status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code };
}

describe("request bodies at the edge", () => {
  it("stops reading a body of unknown length at FANOUT_MAX_BODY_BYTES and answers 413", async () => {
    const env = testEnv({ FANOUT_MAX_BODY_BYTES: "4096" });
    for (const path of ["/v1/publish", "/v1/invalidate"]) {
      const body = endlessBody(1000);
      expect(await post(env, path, body.stream, PUBLISH_KEY)).toEqual({ status: 413, code: "payload_too_large" });
      // What was pulled is bounded by the limit plus what the runtime reads ahead.
      expect(body.pulled()).toBeLessThan(64 * 1024);
    }
  });

  it("refuses a caller without a valid key before reading the body", async () => {
    const env = testEnv();
    for (const [path, key] of [["/v1/publish", undefined], ["/v1/invalidate", "wrong"], ["/v1/tickets", undefined]] as const) {
      const body = endlessBody(1000);
      expect(await post(env, path, body.stream, key)).toEqual({ status: 401, code: "unauthorized" });
    }
  });
});
