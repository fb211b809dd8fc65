import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { RedisServer, freePort } from "../../test/support/redis-server.js";
import { startUpstashRestServer, type UpstashRestServer } from "../../tools/upstash-rest-server.js";
import { startConnectionDropper } from "./connection-dropper.js";

declare module "vitest" {
  export interface ProvidedContext {
    restUrl: string;
    restToken: string;
    /** A REST server whose Redis is gone: answers every command with an error. */
    brokenRestUrl: string;
    /** Nothing listens here. */
    deadUrl: string;
    /** Cuts every connection without an answer; `GET <dropUrl>/count` tells how many it cut. */
    dropUrl: string;
    /** A relay (Node, `relay/main.ts`) on the same Redis; "" if it did not start. */
    relayUrl: string;
    relayError: string;
    /** FANOUT_LOG_PREFIX of that relay: the edge must publish into the same log. */
    relayLogPrefix: string;
    /** Two more redis-servers, the shards of one sharded log, each behind its own REST server (shard 0 first). */
    shardRestUrls: string[];
    /** A relay on both shards (`REDIS_URL` lists them), with SHARDED_PARTITIONS partitions and prefix `relayLogPrefix`; "" if it did not start. */
    shardedRelayUrl: string;
    shardedRelayError: string;
  }
}

const E2E_PREFIX = "e2e";
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * Runs the relay as its own Node process (as in production) in its own process group, so
 * the whole group can be stopped. Resolves once it says it is listening.
 */
async function startRelayProcess(redisUrl: string, env: Record<string, string> = {}): Promise<{ url: string; close(): Promise<void> }> {
  const port = await freePort();
  const proc = spawn(`${ROOT}node_modules/.bin/tsx`, ["relay/main.ts"], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, REDIS_URL: redisUrl, PORT: String(port), HOST: "127.0.0.1", FANOUT_PUBLISH_KEYS: "relay-key", FANOUT_LOG_PREFIX: E2E_PREFIX, ...env },
  });
  const close = async () => {
    if (proc.exitCode !== null || proc.pid === undefined) return;
    const exited = new Promise<void>((r) => proc.once("exit", () => r()));
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      return;
    }
    await exited;
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`relay did not start within 20 s: ${out.slice(-2000)}`)), 20_000);
      const onData = (b: Buffer) => {
        out += b.toString();
        if (out.includes("relay listening")) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on("data", onData);
      proc.stderr!.on("data", onData);
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`relay exited with ${code}: ${out.slice(-2000)}`));
      });
    });
  } catch (err) {
    await close();
    throw err;
  }
  return { url: `http://127.0.0.1:${port}`, close };
}

const TOKEN = "functions-test-token";

/**
 * A private redis-server and an Upstash-REST server over it, for the tests running inside
 * workerd (which reach them over loopback fetch). Everything started is stopped in
 * `finally`: an exception escaping a globalSetup hangs vitest.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started: { close(): Promise<void> }[] = [];
  const teardown = async () => {
    for (const s of started.reverse()) await s.close().catch(() => undefined);
  };
  let ok = false;
  try {
    const redis = await RedisServer.start();
    started.push({ close: () => redis.dispose() });
    const rest: UpstashRestServer = await startUpstashRestServer({ redisUrl: redis.url, token: TOKEN });
    started.push(rest);
    const broken = await startUpstashRestServer({ redisUrl: `redis://127.0.0.1:${await freePort()}`, token: TOKEN });
    started.push(broken);
    project.provide("restUrl", rest.url);
    project.provide("restToken", TOKEN);
    project.provide("brokenRestUrl", broken.url);
    project.provide("deadUrl", `http://127.0.0.1:${await freePort()}`);
    const dropper = await startConnectionDropper();
    started.push(dropper);
    project.provide("dropUrl", dropper.url);
    project.provide("relayLogPrefix", E2E_PREFIX);
    // The end-to-end test needs it; the rest must not fail with it.
    try {
      const relay = await startRelayProcess(redis.url);
      started.push(relay);
      project.provide("relayUrl", relay.url);
      project.provide("relayError", "");
    } catch (err) {
      project.provide("relayUrl", "");
      project.provide("relayError", (err as Error).message);
    }
    // A log sharded over two more servers, each with its own REST server, as one Upstash
    // database per shard would be.
    const shardUrls: string[] = [];
    const shardRest: string[] = [];
    for (let i = 0; i < 2; i++) {
      const server = await RedisServer.start();
      started.push({ close: () => server.dispose() });
      shardUrls.push(server.url);
      const bridge = await startUpstashRestServer({ redisUrl: server.url, token: TOKEN });
      started.push(bridge);
      shardRest.push(bridge.url);
    }
    project.provide("shardRestUrls", shardRest);
    try {
      const relay = await startRelayProcess(shardUrls.join(" "), { FANOUT_LOG_PARTITIONS: "16" });
      started.push(relay);
      project.provide("shardedRelayUrl", relay.url);
      project.provide("shardedRelayError", "");
    } catch (err) {
      project.provide("shardedRelayUrl", "");
      project.provide("shardedRelayError", (err as Error).message);
    }
    ok = true;
    return teardown;
  } finally {
    if (!ok) await teardown();
  }
}
