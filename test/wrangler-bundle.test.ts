import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

describe("the edge functions as users deploy them", () => {
  it("bundle with `wrangler deploy --dry-run` from the project root", () => {
    const out = mkdtempSync(join(tmpdir(), "fanout-wrangler-"));
    try {
      const r = spawnSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", out], {
        encoding: "utf8",
        timeout: 120_000,
        env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_SEND_ERROR_REPORTS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
      });
      expect(r.status, r.stderr + r.stdout).toBe(0);
      expect(r.stdout).toMatch(/--dry-run: exiting now/);
      const files = readdirSync(out);
      expect(files.some((f) => f.endsWith(".js"))).toBe(true);
      expect(existsSync(join(out, files.find((f) => f.endsWith(".js"))!))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 150_000);
});
