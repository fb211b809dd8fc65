import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The programs `npm test` needs besides Node, found (or installed from Debian's packages)
 * before vitest starts: `npm run pretest` runs this file. Quiet when everything is there;
 * otherwise it installs what it can (root with apt-get) or stops with one line naming the
 * command to run. `TEST_DEPS_INSTALL=0` turns the installing off (check only).
 */
export interface TestDependency {
  /** The program looked up on the PATH. */
  bin: string;
  /** Debian's package that provides it. */
  pkg: string;
  /** An environment variable naming the program's path instead of the PATH lookup. */
  override?: string;
  /** Also looked for in the system directories (`TEST_DEPS_SBIN`, default /usr/sbin:/sbin), which a user's PATH often lacks. */
  sbin?: boolean;
}

export const TEST_DEPENDENCIES: readonly TestDependency[] = [
  { bin: "redis-server", pkg: "redis-server" },
  { bin: "redis-cli", pkg: "redis-tools" },
  // Debian's Chromium, driven by playwright-core: the tests never download a browser.
  { bin: "chromium", pkg: "chromium", override: "CHROMIUM_PATH" },
  // The proxy test runs Debian's nginx (a child process on loopback, never the system service).
  { bin: "nginx", pkg: "nginx", sbin: true },
  // The deploy checks: `docker-compose config` and `systemd-analyze verify` (no engine, no systemd running).
  { bin: "docker-compose", pkg: "docker-compose" },
  { bin: "systemd-analyze", pkg: "systemd" },
];

type Env = Record<string, string | undefined>;

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The first executable file called `name` in the directories of `path` (a PATH value). */
export function findExecutable(name: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Where `dep` is on this machine: its override variable when set (and executable), else the PATH. */
export function locate(dep: TestDependency, env: Env = process.env): string | undefined {
  const override = dep.override ? env[dep.override] : undefined;
  if (override) return isExecutableFile(override) ? override : undefined;
  const sbin = dep.sbin ? (env.TEST_DEPS_SBIN ?? ["/usr/sbin", "/sbin"].join(delimiter)) : "";
  return findExecutable(dep.bin, sbin ? `${env.PATH ?? ""}${delimiter}${sbin}` : env.PATH);
}

/** The Chromium the browser tests launch. */
export function chromiumPath(env: Env = process.env): string | undefined {
  return locate(TEST_DEPENDENCIES.find((d) => d.bin === "chromium")!, env);
}

/** The nginx the proxy test runs. */
export function nginxPath(env: Env = process.env): string | undefined {
  return locate(TEST_DEPENDENCIES.find((d) => d.bin === "nginx")!, env);
}

export function missingTestDependencies(env: Env = process.env): TestDependency[] {
  return TEST_DEPENDENCIES.filter((d) => locate(d, env) === undefined);
}

export interface Host {
  isRoot: boolean;
  hasAptGet: boolean;
  installAllowed: boolean;
}

export type Plan = { kind: "ready" } | { kind: "install"; packages: string[] } | { kind: "stop"; message: string };

/** What to do about `missing` on `host`: nothing, install Debian's packages, or stop with one line. */
export function planFor(missing: readonly TestDependency[], host: Host): Plan {
  if (missing.length === 0) return { kind: "ready" };
  const packages = [...new Set(missing.map((d) => d.pkg))];
  if (host.hasAptGet && host.isRoot && host.installAllowed) return { kind: "install", packages };
  return { kind: "stop", message: stopMessage(missing, packages, host) };
}

export function stopMessage(missing: readonly TestDependency[], packages: readonly string[], host: Pick<Host, "isRoot" | "hasAptGet">): string {
  const names = missing.map((d) => d.bin).join(", ");
  const chromium = missing.some((d) => d.override === "CHROMIUM_PATH") ? " (CHROMIUM_PATH may name a Chromium binary instead)" : "";
  const sudo = host.isRoot ? "" : "sudo ";
  const apt = `${sudo}apt-get update && ${sudo}apt-get install -y ${packages.join(" ")}`;
  if (host.hasAptGet) return `npm test needs ${names}: run \`${apt}\`, then npm test again${chromium}`;
  return `npm test needs ${names} on the PATH: install them with your package manager (Debian: \`${apt}\`), then npm test again${chromium}`;
}

function hostOf(env: Env): Host {
  return {
    isRoot: process.getuid?.() === 0,
    hasAptGet: findExecutable("apt-get", env.PATH) !== undefined,
    installAllowed: env.TEST_DEPS_INSTALL !== "0",
  };
}

/** Installs `packages` with apt-get, its chatter kept out of the test output; false if apt-get failed. */
function aptInstall(packages: readonly string[], env: Env): boolean {
  const opts: SpawnSyncOptions = { stdio: ["ignore", "ignore", "inherit"], env: { ...env, DEBIAN_FRONTEND: "noninteractive" } };
  return (
    spawnSync("apt-get", ["update", "-qq"], opts).status === 0 &&
    spawnSync("apt-get", ["install", "-y", "-qq", ...packages], opts).status === 0
  );
}

/** Exit code for `npm test`'s pretest step. */
export function ensureTestDependencies(env: Env = process.env): number {
  const missing = missingTestDependencies(env);
  const host = hostOf(env);
  const plan = planFor(missing, host);
  if (plan.kind === "ready") return 0;
  if (plan.kind === "stop") {
    console.error(plan.message);
    return 1;
  }
  console.error(`npm test: installing ${plan.packages.join(" ")} (Debian packages) for the tests…`);
  const ok = aptInstall(plan.packages, env);
  const still = missingTestDependencies(env);
  if (ok && still.length === 0) return 0;
  console.error(stopMessage(still.length > 0 ? still : missing, plan.packages, host));
  return 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = ensureTestDependencies();
}
