import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import type { Io } from "./io.js";
import { main } from "./main.js";
import { runCli } from "./testing/cli-process.js";

function capture(): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { env: {}, stdout, stderr, out: (l) => void stdout.push(l), err: (l) => void stderr.push(l) };
}

describe("edge-fanout dispatch and help", () => {
  it("runs through the bin shim: --help lists every command, exit 0", async () => {
    const res = await runCli(["--help"]);
    expect(res.code).toBe(0);
    for (const c of ["serve", "publish", "tail", "stats", "token"]) expect(res.stdout).toMatch(new RegExp(`^  ${c} +\\S`, "m"));
  });

  it("is what `npm exec edge-fanout` (npx) runs from the project root, with no registry involved", async () => {
    const root = fileURLToPath(new URL("../", import.meta.url));
    const { stdout } = await promisify(execFile)("npm", ["exec", "--offline", "--yes=false", "edge-fanout", "--", "token", "--help"], { cwd: root });
    expect(stdout).toMatch(/^Usage: edge-fanout token/);
  });

  it("gives each command a --help (and -h) on stdout, exit 0", async () => {
    for (const c of ["serve", "publish", "tail", "stats", "token"]) {
      for (const flag of ["--help", "-h"]) {
        const io = capture();
        expect(await main([c, flag], io)).toBe(0);
        expect(io.stdout.join("\n")).toMatch(new RegExp(`^Usage: edge-fanout ${c}`));
        expect(io.stderr).toEqual([]);
      }
    }
  });

  it("answers a usage error with one line on stderr and exit 2", async () => {
    for (const argv of [[], ["frobnicate"], ["publish", "a", "b", "--nope"], ["tail"], ["stats", "extra"], ["stats", "--top", "-1"], ["tail", "a", "--json=yes"]]) {
      const io = capture();
      expect(await main(argv, io), argv.join(" ")).toBe(2);
      expect(io.stdout).toEqual([]);
      if (argv.length > 0) expect(io.stderr.join("\n").split("\n"), argv.join(" ")).toHaveLength(1);
    }
  });
});
