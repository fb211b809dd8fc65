/**
 * /proc readers and small process helpers for the benchmark harness (Linux only).
 * CPU is read as utime+stime clock ticks; memory as VmRSS (and PSS where available).
 */
import { readFileSync, readdirSync } from "node:fs";
import { connect } from "node:net";

/** Clock ticks per second for /proc/<pid>/stat utime/stime (USER_HZ, 100 on Linux). */
export const CLK_TCK = 100;

function statFields(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "latin1");
    // comm (field 2) is in parentheses and may contain spaces: split after the last ')'.
    const rest = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return rest; // rest[0] is field 3 (state)
  } catch {
    return undefined;
  }
}

/** utime+stime of one process in seconds (0 if gone). */
export function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  if (!f) return 0;
  // fields 14 (utime) and 15 (stime) → indices 11 and 12 after field 3
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Every descendant pid of `root` (not including root). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const f = statFields(pid);
    if (!f) continue;
    const ppid = Number(f[1]);
    let list = children.get(ppid);
    if (!list) children.set(ppid, (list = []));
    list.push(pid);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    for (const c of children.get(p) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

/** The process and all its descendants (nginx master + workers, npx → tsx → node). */
export function tree(root: number): number[] {
  return [root, ...descendants(root)];
}

/** Summed utime+stime (s) over a process tree. */
export function treeCpuSeconds(root: number): number {
  let sum = 0;
  for (const p of tree(root)) sum += cpuSeconds(p);
  return sum;
}

function statusKb(pid: number, key: string): number {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "latin1");
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(s);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** VmRSS in bytes, summed over the tree. */
export function treeRssBytes(root: number): number {
  let sum = 0;
  for (const p of tree(root)) sum += statusKb(p, "VmRSS") * 1024;
  return sum;
}

/** Proportional set size in bytes, summed over the tree (shared pages split between sharers). */
export function treePssBytes(root: number): number {
  let sum = 0;
  for (const p of tree(root)) {
    try {
      const s = readFileSync(`/proc/${p}/smaps_rollup`, "latin1");
      const m = /^Pss:\s+(\d+) kB/m.exec(s);
      if (m) sum += Number(m[1]) * 1024;
    } catch {
      /* gone or not readable */
    }
  }
  return sum;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A TCP port free on 127.0.0.1 right now (shared with the tests). */
export { freePort } from "../test/support/redis-server.js";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves once something accepts TCP connections on host:port. */
export async function waitForPort(port: number, timeoutMs: number, host = "127.0.0.1", isAlive?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (isAlive && !isAlive()) throw new Error(`process exited before listening on ${port}`);
    if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

export function machine(): { nproc: number; cpu: string; memGb: number; kernel: string } {
  const info = readFileSync("/proc/cpuinfo", "latin1");
  const cpu = /^model name\s*:\s*(.*)$/m.exec(info)?.[1]?.trim() ?? "unknown";
  const nproc = (info.match(/^processor\s*:/gm) ?? []).length;
  const mem = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "latin1"));
  let kernel = "";
  try {
    kernel = readFileSync("/proc/sys/kernel/osrelease", "latin1").trim();
  } catch {
    /* ignore */
  }
  return { nproc, cpu, memGb: mem ? Math.round(Number(mem[1]) / 1024 / 1024) : 0, kernel };
}

/** Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat. */
export function boxBusySeconds(): number {
  const line = readFileSync("/proc/stat", "latin1").split("\n", 1)[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] || 0)) / CLK_TCK;
}

/**
 * CPU used by processes outside `root`'s tree (other work on a shared box) over `ms`,
 * as a percentage of one core.
 */
export async function foreignCpuPct(root: number, ms: number): Promise<number> {
  const b0 = boxBusySeconds();
  const o0 = treeCpuSeconds(root);
  await sleep(ms);
  const b1 = boxBusySeconds();
  const o1 = treeCpuSeconds(root);
  return Math.max(0, ((b1 - b0 - (o1 - o0)) / (ms / 1000)) * 100);
}
