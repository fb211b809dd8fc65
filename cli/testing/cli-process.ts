import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = fileURLToPath(new URL("../../bin/edge-fanout.js", import.meta.url));

/** The test runner's settings must not leak into the CLI: it reads these as defaults. */
const OWN_ENV = /^(FANOUT_|REDIS_URL$|PORT$|HOST$)/;

/**
 * `node bin/edge-fanout.js …` as a child process, so the shim, tsx's loader and the exit code
 * are what a user gets. Asynchronous on purpose: the relay it talks to runs in the test's
 * own event loop.
 */
export class CliProcess {
  stdout = "";
  stderr = "";
  code: number | null | undefined;
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private waiters: Array<() => void> = [];

  constructor(args: string[], env: Record<string, string | undefined> = {}) {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !OWN_ENV.test(k)));
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.setEncoding("utf8").on("data", (s: string) => ((this.stdout += s), this.wake()));
    this.child.stderr!.setEncoding("utf8").on("data", (s: string) => ((this.stderr += s), this.wake()));
    this.exited = new Promise((resolve) => this.child.on("close", (code) => resolve((this.code = code))));
    void this.exited.then(() => this.wake());
    running.add(this);
  }

  /** Resolves with the first match of `re` in the stream; a generous guard names what was seen. */
  async waitFor(stream: "stdout" | "stderr", re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this[stream].match(re);
      if (m) return m;
      if (this.code !== undefined || Date.now() > deadline) {
        throw new Error(`no ${re} on ${stream} (exit ${this.code}); stdout: ${this.stdout.slice(-800)} stderr: ${this.stderr.slice(-800)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  /** Lines of stdout matching `re` (all of them when omitted). */
  lines(re?: RegExp): string[] {
    return this.stdout.split("\n").filter((l) => l !== "" && (!re || re.test(l)));
  }

  /** The reader of stdout goes away, as `| head -1` does. */
  closeStdout(): void {
    this.child.stdout!.destroy();
  }

  kill(signal: NodeJS.Signals = "SIGINT"): Promise<number | null> {
    if (this.code === undefined) this.child.kill(signal);
    return this.exited;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

const running = new Set<CliProcess>();
afterEach(async () => {
  const left = [...running];
  running.clear();
  await Promise.all(left.map((p) => p.kill("SIGKILL")));
});

/** Runs the CLI to its end. */
export async function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = new CliProcess(args, env);
  const code = await p.exited;
  return { code, stdout: p.stdout, stderr: p.stderr };
}
