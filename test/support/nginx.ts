import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./redis-server.js";
import { nginxPath } from "./test-dependencies.js";

/** The nginx configuration shipped for deployments (docker-compose.yml mounts it). */
export const DEPLOY_NGINX_CONF = join(import.meta.dirname, "../../deploy/nginx.conf");

/** Replaces `pattern` in `text`, insisting it matched exactly `count` times (so a changed file fails loudly). */
function replaceExactly(text: string, pattern: RegExp, replacement: string, count: number): string {
  const hits = text.match(new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : `${pattern.flags}g`))?.length ?? 0;
  if (hits !== count) throw new Error(`deploy/nginx.conf: expected ${count} match(es) of ${pattern}, found ${hits}`);
  return text.replace(new RegExp(pattern.source, `${pattern.flags.replace("g", "")}g`), replacement);
}

/**
 * deploy/nginx.conf for a test: the same file with only what differs on this machine
 * replaced — the upstream servers (`server relayN:8080;` → the test's relays), the listen
 * address (loopback, a free port) and the temp paths (inside `prefix`, so nginx runs without
 * root). Every proxy setting is the shipped one. `edit` may change the text further (a test
 * that proves a setting matters).
 */
export function nginxConfigFor(opts: { upstreams: string[]; port: number; prefix: string; edit?: (conf: string) => string }): string {
  let conf = readFileSync(DEPLOY_NGINX_CONF, "utf8");
  const servers = opts.upstreams.map((u) => `server ${u};`).join("\n        ");
  conf = replaceExactly(conf, /server relay1:8080;\n\s*server relay2:8080;/, servers, 1);
  conf = replaceExactly(conf, /listen 8080;/, `listen 127.0.0.1:${opts.port};`, 1);
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((k) => `${k}_temp_path ${join(opts.prefix, `${k}_temp`)};`).join("\n    ");
  conf = replaceExactly(conf, /^http \{$/m, `http {\n    ${temp}`, 1);
  return opts.edit ? opts.edit(conf) : conf;
}

export interface RunningNginx {
  base: string;
  port: number;
  /** What nginx wrote (access and error log), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Debian's nginx (`apt-get install -y nginx`; `npm test`'s pretest step installs it) as a
 * child process — not a daemon — on a free loopback port, with `conf` in a temp prefix.
 */
export async function startNginx(conf: (port: number, prefix: string) => string): Promise<RunningNginx> {
  const prefix = mkdtempSync(join(tmpdir(), "fanout-nginx-"));
  // Run as root, nginx's workers are another user (www-data): they must reach the temp paths.
  chmodSync(prefix, 0o755);
  mkdirSync(join(prefix, "logs"));
  const port = await freePort();
  const confPath = join(prefix, "nginx.conf");
  writeFileSync(confPath, conf(port, prefix));
  // The access log goes to /dev/stdout, as in a container: a file here, since a Node pipe
  // is a socket, which /dev/stdout cannot be opened on.
  const accessLog = join(prefix, "logs", "stdout.log");
  const stdout = openSync(accessLog, "w");
  const proc: ChildProcess = spawn(nginxPath() ?? "nginx", ["-p", prefix, "-c", confPath, "-e", "stderr", "-g", `daemon off; pid ${join(prefix, "nginx.pid")};`], {
    stdio: ["ignore", stdout, "pipe"],
  });
  closeSync(stdout);
  let errors = "";
  proc.stderr!.on("data", (b) => (errors += b));
  const output = () => {
    let access = "";
    try {
      access = readFileSync(accessLog, "utf8");
    } catch {}
    return `${errors}${access}`;
  };
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const spawnError = new Promise<never>((_, reject) =>
    proc.once("error", (e) => reject(new Error(`cannot run nginx (is it installed? apt-get install -y nginx): ${e.message}`))),
  );
  spawnError.catch(() => undefined);
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      // SIGTERM is nginx's fast shutdown: open streams are cut, workers exit with the master.
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(prefix, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`nginx exited at start: ${output()}`);
    }
    const up = await Promise.race([spawnError, canConnect(port)]);
    if (up) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not listen on ${port}: ${output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { base: `http://127.0.0.1:${port}`, port, output, stop };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
