/**
 * Top self-time functions of V8 .cpuprofile files (as written by `node --cpu-prof`).
 *   npx tsx bench/profile-summary.ts <file.cpuprofile | dir> [top]
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function shortUrl(u: string): string {
  if (!u) return "";
  const nm = u.lastIndexOf("node_modules/");
  if (nm >= 0) return u.slice(nm + 13);
  const i = u.search(/\/(relay|protocol|routes|functions)\//);
  return i >= 0 ? u.slice(i + 1) : u.replace(/^file:\/\//, "");
}

/** Sampled time outside (idle) and (program), µs. */
export function busyMicros(file: string): number {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const idle = new Set(p.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id));
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) if (!idle.has(p.samples[i])) busy += p.timeDeltas[i] ?? 0;
  return busy;
}

export function summarizeProfile(file: string, top = 20): string {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = p.timeDeltas.reduce((s, d) => s + d, 0) || 1;
  const fn = new Map<string, number>();
  const mod = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    const cf = n.callFrame;
    const url = shortUrl(cf.url);
    const key = `${cf.functionName || "(anonymous)"} ${url ? `${url}:${cf.lineNumber + 1}` : ""}`.trim();
    fn.set(key, (fn.get(key) ?? 0) + t);
    const m = cf.functionName === "(idle)" ? "(idle)" : cf.functionName === "(garbage collector)" ? "(gc)" : url ? url.split("/").slice(0, url.startsWith("@") ? 2 : 1).join("/") : "(native/V8)";
    mod.set(m, (mod.get(m) ?? 0) + t);
  }
  const idle = fn.get("(idle)") ?? 0;
  const busy = total - idle || 1;
  const pct = (t: number): string => `${((t / busy) * 100).toFixed(1).padStart(5)}%`;
  const lines = [`  ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (startup included); top self time, % of busy:`];
  fn.delete("(idle)");
  mod.delete("(idle)");
  for (const [k, t] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(t)}  ${k}`);
  lines.push("  by module/file:");
  for (const [k, t] of [...mod].sort((a, b) => b[1] - a[1]).slice(0, 10)) lines.push(`  ${pct(t)}  ${k}`);
  return lines.join("\n");
}

export function summarizeProfileDir(dir: string, top = 20): string | undefined {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => f.endsWith(".cpuprofile"))
      .map((f) => join(dir, f))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  } catch {
    return undefined;
  }
  if (!files.length) return undefined;
  // node --cpu-prof also profiles the loader-hooks thread of `--import tsx`: keep the busiest
  const busiest = files
    .map((f) => ({ f, busy: busyMicros(f) }))
    .sort((a, b) => b.busy - a.busy)[0].f;
  return `  ${busiest}\n${summarizeProfile(busiest, top)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = process.argv[2];
  const top = Number(process.argv[3] ?? 25);
  if (!target) {
    console.error("usage: npx tsx bench/profile-summary.ts <file.cpuprofile | dir> [top]");
    process.exit(2);
  }
  console.log(statSync(target).isDirectory() ? (summarizeProfileDir(target, top) ?? "no .cpuprofile in dir") : summarizeProfile(target, top));
}
