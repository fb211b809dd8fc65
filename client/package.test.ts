import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../test/support/browser.js";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { publish } from "../test/support/sse-client.js";

const run = promisify(execFile);
const CLIENT_DIR = fileURLToPath(new URL(".", import.meta.url));
const TSC = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url));
const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/** What a user's Node program does with the installed package. */
const NODE_CONSUMER = `
import { FanoutClient, publish } from "@edge-fanout/client";
const url = process.argv[2];
const client = new FanoutClient({ url, channels: ["pkg:node"] });
client.onReady(() => publish(url, { channel: "pkg:node", type: "hello", data: { from: "node" }, meta: { source: "pkg-test" } }));
for await (const m of client) {
  console.log(JSON.stringify(m));
  client.close();
}
`;

/** Typed use of the installed package: compiled by tsc against its .d.ts (exports → types). */
const TS_CONSUMER = `
import { FanoutClient, type Envelope } from "@edge-fanout/client";
import { useChannel } from "@edge-fanout/client/react";
interface Events { "order.created": { id: number } }
const c = new FanoutClient<Events>({ url: "http://localhost:8080", channels: ["orders"] });
c.on("order.created", (m: Envelope<{ id: number }>) => m.data.id.toFixed() + (m.meta?.source ?? ""));
// @ts-expect-error typed data
c.on("order.created", (m) => m.data.nope);
export const hook: typeof useChannel = useChannel;
`;

/** A page of a user's app: bundled by esbuild from the installed package. */
const PAGE_ENTRY = `
import { FanoutClient } from "@edge-fanout/client";
const url = new URL(location.href).searchParams.get("relay");
const client = new FanoutClient({ url, channels: ["pkg:browser"] });
window.got = [];
client.onReady(() => (window.ready = true));
(async () => {
  for await (const m of client) window.got.push(m);
})();
`;

describe("the packed SDK (@edge-fanout/client) in a fresh project", () => {
  let tmp: string;
  let project: string;
  let relay: RunningRelay;
  let browser: Browser;
  let site: Server | undefined;
  let origin: string;
  let files: string[];

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "fanout-pkg-"));
    project = join(tmp, "app");
    await mkdir(project);
    // `npm pack` builds first (prepack) and writes the tarball users would install.
    const packed = JSON.parse((await run("npm", ["pack", "--json", "--pack-destination", tmp], { cwd: CLIENT_DIR })).stdout) as [{ filename: string; files: { path: string }[] }];
    files = packed[0].files.map((f) => f.path).sort();
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    // No registry needed: the package has no dependencies (React is an optional peer).
    await run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", join(tmp, packed[0].filename)], { cwd: project });
    [relay, browser] = await Promise.all([startRelay({ FANOUT_CORS_ORIGINS: "*" }), launchChromium()]);
  }, 60_000);

  afterAll(async () => {
    site?.closeAllConnections();
    await new Promise<void>((r) => (site ? site.close(() => r()) : r()));
    await browser?.close();
    await relay?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("holds the ESM build and its types, nothing else", async () => {
    expect(files).toContain("package.json");
    for (const f of ["dist/index.js", "dist/index.d.ts", "dist/react.js", "dist/react.d.ts"]) expect(files).toContain(f);
    expect(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
    expect(files.filter((f) => f.includes("test"))).toEqual([]);
    const manifest = JSON.parse(await readFile(join(project, "node_modules/@edge-fanout/client/package.json"), "utf8"));
    expect(manifest.dependencies).toBeUndefined();
    // The built code never reaches outside the package (into the server's sources).
    for (const f of files.filter((x) => x.endsWith(".js"))) {
      expect(await readFile(join(project, "node_modules/@edge-fanout/client", f), "utf8"), f).not.toMatch(/from "\.\.\//);
    }
  });

  it("runs in Node 20: subscribes, publishes and receives the message with its meta", async () => {
    await writeFile(join(project, "consumer.mjs"), NODE_CONSUMER);
    const { stdout } = await run(process.execPath, ["consumer.mjs", relay.base], { cwd: project, timeout: 15_000 });
    expect(JSON.parse(stdout)).toEqual({ id: expect.any(String), channel: "pkg:node", type: "hello", meta: { source: "pkg-test" }, data: { from: "node" }, ts: expect.any(Number) });
  });

  it("typechecks a consumer through the package's exports; the react subpath needs React, the core does not", async () => {
    await writeFile(join(project, "consumer.ts"), TS_CONSUMER);
    await writeFile(
      join(project, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true, lib: ["ES2022", "DOM"], types: [] }, files: ["consumer.ts"] }),
    );
    await run(process.execPath, [TSC, "-p", "."], { cwd: project });
    // React is not installed in this project: only the subpath asks for it.
    const react = await run(process.execPath, ["--input-type=module", "-e", 'await import("@edge-fanout/client/react")'], { cwd: project }).then(
      () => "loaded",
      (e: { stderr: string }) => e.stderr,
    );
    expect(react).toMatch(/Cannot find package 'react'/);
  });

  it("works bundled for a browser page (headless Chromium)", async () => {
    const out = await build({ stdin: { contents: PAGE_ENTRY, resolveDir: project, loader: "js" }, bundle: true, format: "esm", platform: "browser", target: "es2022", write: false });
    const js = out.outputFiles[0].text;
    // It resolved without React installed: the core never imports it.
    expect(js).not.toMatch(/["']react["']/);
    site = createServer((req, res) => {
      if (req.url === "/app.js") res.writeHead(200, { "Content-Type": "text/javascript" }).end(js);
      else res.writeHead(200, { "Content-Type": "text/html" }).end('<!doctype html><meta charset="utf-8"><script type="module" src="/app.js"></script>');
    });
    await new Promise<void>((r) => site!.listen(0, "127.0.0.1", () => r()));
    origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    const page = await browser.newPage();
    try {
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`${origin}/?relay=${encodeURIComponent(relay.base)}`);
      await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
      expect((await publish(relay.base, { channel: "pkg:browser", type: "hello", data: "from the browser test", meta: { source: "pkg-test" } }, { traceparent: TP })).status).toBe(200);
      await page.waitForFunction(() => (window as unknown as { got: unknown[] }).got.length === 1);
      expect(await page.evaluate(() => (window as unknown as { got: unknown[] }).got)).toEqual([
        { id: expect.any(String), channel: "pkg:browser", type: "hello", meta: { source: "pkg-test", traceparent: TP }, data: "from the browser test", ts: expect.any(Number) },
      ]);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
