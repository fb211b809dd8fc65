import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TEST_DEPENDENCIES, findExecutable, missingTestDependencies, nginxPath, planFor } from "./test-dependencies.js";

const SCRIPT = join(import.meta.dirname, "test-dependencies.ts");
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A directory holding an executable file for each name (and a plain file called `not-exec`). */
function binDir(names: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "fanout-deps-"));
  dirs.push(dir);
  for (const n of names) {
    writeFileSync(join(dir, n), "#!/bin/sh\nexit 1\n");
    chmodSync(join(dir, n), 0o755);
  }
  writeFileSync(join(dir, "not-exec"), "");
  mkdirSync(join(dir, "a-dir"));
  return dir;
}

/** Runs the pretest step as `npm test` does, with only `env` (no inherited PATH). */
function runScript(env: Record<string, string>) {
  const r = spawnSync(process.execPath, ["--import", "tsx", SCRIPT], { env: { HOME: tmpdir(), TEST_DEPS_SBIN: "", ...env }, encoding: "utf8", cwd: join(import.meta.dirname, "../..") });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("the programs npm test needs", () => {
  it("finds executables on an injected PATH, skipping plain files, directories and empty entries", () => {
    const dir = binDir(["tool"]);
    expect(findExecutable("tool", `/nonexistent::${dir}`)).toBe(join(dir, "tool"));
    expect(findExecutable("not-exec", dir)).toBeUndefined();
    expect(findExecutable("a-dir", dir)).toBeUndefined();
    expect(findExecutable("tool", undefined)).toBeUndefined();
  });

  const ALL = ["redis-server", "redis-cli", "chromium", "nginx", "docker-compose", "systemd-analyze"];
  // No system directories: what this machine has installed does not change the answers.
  const env = (e: Record<string, string>) => ({ TEST_DEPS_SBIN: "", ...e });

  it("reports what is missing; CHROMIUM_PATH stands in for chromium on the PATH", () => {
    expect(TEST_DEPENDENCIES.map((d) => d.bin)).toEqual(ALL);
    const all = binDir(ALL);
    expect(missingTestDependencies(env({ PATH: all }))).toEqual([]);
    expect(missingTestDependencies(env({ PATH: "/nonexistent" })).map((d) => d.bin)).toEqual(ALL);
    const noBrowser = binDir(ALL.filter((b) => b !== "chromium"));
    const browser = binDir(["my-chromium"]);
    expect(missingTestDependencies(env({ PATH: noBrowser, CHROMIUM_PATH: join(browser, "my-chromium") }))).toEqual([]);
    expect(missingTestDependencies(env({ PATH: all, CHROMIUM_PATH: join(browser, "not-exec") })).map((d) => d.bin)).toEqual(["chromium"]);
  });

  it("finds nginx in the system directories when the PATH lacks them (a user's PATH often has no /usr/sbin)", () => {
    const sbin = binDir(["nginx"]);
    const rest = binDir(ALL.filter((b) => b !== "nginx"));
    expect(missingTestDependencies({ PATH: rest, TEST_DEPS_SBIN: sbin })).toEqual([]);
    expect(nginxPath({ PATH: rest, TEST_DEPS_SBIN: sbin })).toBe(join(sbin, "nginx"));
    expect(missingTestDependencies(env({ PATH: rest })).map((d) => d.bin)).toEqual(["nginx"]);
    // Only nginx: the others are looked for on the PATH alone.
    expect(missingTestDependencies({ PATH: binDir(["nginx"]), TEST_DEPS_SBIN: rest }).map((d) => d.bin)).toEqual(ALL.filter((b) => b !== "nginx"));
  });

  it("installs Debian's packages only as root with apt-get; otherwise names the command", () => {
    const [server, cli, chromium, nginx, compose, systemd] = TEST_DEPENDENCIES;
    const root = { isRoot: true, hasAptGet: true, installAllowed: true };
    expect(planFor([], root)).toEqual({ kind: "ready" });
    expect(planFor([server, cli, chromium], root)).toEqual({ kind: "install", packages: ["redis-server", "redis-tools", "chromium"] });
    expect(planFor([nginx, compose, systemd], root)).toEqual({ kind: "install", packages: ["nginx", "docker-compose", "systemd"] });
    expect(planFor([chromium], { ...root, isRoot: false })).toEqual({
      kind: "stop",
      message: "npm test needs chromium: run `sudo apt-get update && sudo apt-get install -y chromium`, then npm test again (CHROMIUM_PATH may name a Chromium binary instead)",
    });
    expect(planFor([server], { ...root, installAllowed: false })).toEqual({
      kind: "stop",
      message: "npm test needs redis-server: run `apt-get update && apt-get install -y redis-server`, then npm test again",
    });
    const noApt = planFor([server, chromium], { ...root, hasAptGet: false });
    expect(noApt.kind === "stop" && noApt.message).toMatch(/^npm test needs redis-server, chromium on the PATH: install them .*`apt-get update && apt-get install -y redis-server chromium`/);
  });

  it("as the pretest step: silent when everything is there", () => {
    const all = binDir(ALL);
    expect(runScript({ PATH: all, TEST_DEPS_INSTALL: "0" })).toEqual({ status: 0, stdout: "", stderr: "" });
  });

  it("as the pretest step: one line naming the command when something is missing and cannot be installed", () => {
    // An apt-get that must not run: installing is turned off.
    const withApt = binDir(["apt-get"]);
    const noRedis = binDir(ALL.filter((b) => !b.startsWith("redis")));
    const r = runScript({ PATH: `${noRedis}:${withApt}`, TEST_DEPS_INSTALL: "0" });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^npm test needs redis-server, redis-cli.*apt-get install -y redis-server redis-tools/);

    const bare = runScript({ PATH: "/usr/local/bin:/nonexistent", TEST_DEPS_INSTALL: "0" });
    expect(bare.status).toBe(1);
    expect(bare.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(bare.stderr).toMatch(/^npm test needs redis-server, redis-cli, chromium, nginx, docker-compose, systemd-analyze on the PATH: .*apt-get install -y redis-server redis-tools chromium nginx docker-compose systemd`.*CHROMIUM_PATH/);
  });
});
