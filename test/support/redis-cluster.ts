import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freeBusPort, freePort } from "./redis-server.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `redis-cli -p <port> <args…>`, bounded; resolves with stdout. */
export async function redisCli(port: number, args: string[], timeoutMs = 10_000): Promise<string> {
  const { stdout } = await run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { timeout: timeoutMs });
  return stdout;
}

async function until(what: string, ms: number, pred: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      if (await pred()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await sleep(100);
  }
}

/** One private redis-server (or sentinel) process, killed on dispose. */
class Proc {
  private proc?: ChildProcess;
  private out = "";
  constructor(
    readonly port: number,
    private readonly args: string[],
  ) {}

  async start(readyLine: RegExp): Promise<void> {
    const proc = spawn("redis-server", this.args, { stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start on ${this.port}: ${this.out.slice(-500)}`)), 10_000);
      proc.on("error", (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot run redis-server (apt-get install -y redis-server): ${e.message}`));
      });
      proc.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server on ${this.port} exited with ${code}: ${this.out.slice(-500)}`));
      });
      const onData = (b: Buffer) => {
        this.out += b.toString();
        if (readyLine.test(this.out)) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on("data", onData);
      proc.stderr!.on("data", onData);
    });
  }

  get log(): string {
    return this.out;
  }

  /** SIGSTOP / SIGCONT: the process keeps its sockets open but stops answering. */
  signal(sig: "SIGSTOP" | "SIGCONT"): void {
    this.proc?.kill(sig);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 3000);
      p.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
      p.kill("SIGKILL");
    });
  }
}

const common = (port: number, dir: string) => ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir];

/**
 * A private Redis Cluster: `masters` redis-server processes with `--cluster-enabled yes` on
 * free ports, joined with `redis-cli --cluster create … --cluster-replicas 0` (a cluster of
 * one master takes every slot with CLUSTER ADDSLOTSRANGE). Needs
 * redis-server and redis-cli ≥ 5 on the PATH. `dispose()` kills everything, also after a
 * failed start (`start` disposes what it started before rethrowing).
 */
export class RedisCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "fanout-cluster-"));
  private readonly procs: Proc[] = [];
  readonly ports: number[] = [];

  static async start(masters = 3, replicasPerMaster = 0): Promise<RedisCluster> {
    // A node also listens on its port + 10000 (the cluster bus), which nothing reserved: when
    // another process took it meanwhile, boot again on other ports.
    for (let attempt = 1; ; attempt++) {
      const c = new RedisCluster();
      try {
        await c.boot(masters, replicasPerMaster);
        return c;
      } catch (e) {
        await c.dispose();
        if (attempt >= 3 || !/Address already in use/.test((e as Error).message)) throw e;
      }
    }
  }

  private async boot(masters: number, replicasPerMaster: number): Promise<void> {
    for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
      const port = await freeBusPort();
      const nodeDir = mkdtempSync(join(this.dir, `node-${port}-`));
      const p = new Proc(port, [...common(port, nodeDir), "--cluster-enabled", "yes", "--cluster-config-file", join(nodeDir, "nodes.conf"), "--cluster-node-timeout", "2000"]);
      this.procs.push(p);
      this.ports.push(port);
    }
    await Promise.all(this.procs.map((p) => p.start(/Ready to accept connections/)));
    if (masters === 1 && replicasPerMaster === 0) {
      // redis-cli --cluster create wants 3 masters: a cluster of one takes every slot itself.
      // A node that never met another does not know its own address (CLUSTER SLOTS would name
      // an empty host, and clients would find no node): it is told.
      await redisCli(this.ports[0], ["CONFIG", "SET", "cluster-announce-ip", "127.0.0.1"]);
      await redisCli(this.ports[0], ["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    } else await this.create(replicasPerMaster);
    // Every node must agree before clients connect: otherwise a client may see a partial slot map.
    await until("cluster_state:ok on every node", 15_000, async () => {
      const infos = await Promise.all(this.ports.map((p) => redisCli(p, ["CLUSTER", "INFO"])));
      return infos.every((i) => /cluster_state:ok/.test(i) && new RegExp(`cluster_known_nodes:${this.ports.length}\\b`).test(i));
    });
    // Replicas must be in sync before a failover can promote them.
    if (replicasPerMaster > 0) {
      await until("replicas in sync", 15_000, async () => {
        const infos = await Promise.all(this.ports.map((p) => redisCli(p, ["INFO", "replication"])));
        return infos.every((i) => /role:master/.test(i) || /master_link_status:up/.test(i));
      });
    }
  }

  private async create(replicasPerMaster: number): Promise<void> {
    const { stdout } = await run(
      "redis-cli",
      ["--cluster", "create", ...this.ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", String(replicasPerMaster), "--cluster-yes"],
      { timeout: 20_000 },
    ).catch((e: Error & { stdout?: string; stderr?: string }) => {
      throw new Error(`redis-cli --cluster create failed: ${e.message} ${e.stdout ?? ""} ${e.stderr ?? ""}`);
    });
    if (!/All 16384 slots covered/.test(stdout)) throw new Error(`cluster create: ${stdout.slice(-500)}`);
  }

  /** SIGKILLs one node (its port); the others see it fail after the node timeout (2 s). */
  async kill(port: number): Promise<void> {
    await this.procs[this.ports.indexOf(port)]?.stop();
  }

  /** SIGSTOP (`pause`) or SIGCONT one node: a master that is there but silent. */
  pause(port: number, paused: boolean): void {
    this.procs[this.ports.indexOf(port)]?.signal(paused ? "SIGSTOP" : "SIGCONT");
  }

  /** REDIS_URL for the relay: the seed-node list form. */
  get url(): string {
    return this.ports.map((p) => `127.0.0.1:${p}`).join(",");
  }

  get nodes(): Array<{ host: string; port: number }> {
    return this.ports.map((port) => ({ host: "127.0.0.1", port }));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Redis with Sentinel: one master, one replica and one sentinel (quorum 1) watching the
 * master under `name`. `dispose()` kills everything, also after a failed start.
 */
export class RedisSentinelSetup {
  readonly dir = mkdtempSync(join(tmpdir(), "fanout-sentinel-"));
  private readonly procs: Proc[] = [];
  masterPort = 0;
  replicaPort = 0;
  sentinelPort = 0;

  constructor(readonly name = "fanoutmaster") {}

  static async start(name = "fanoutmaster"): Promise<RedisSentinelSetup> {
    const s = new RedisSentinelSetup(name);
    try {
      await s.boot();
      return s;
    } catch (e) {
      await s.dispose();
      throw e;
    }
  }

  private async boot(): Promise<void> {
    this.masterPort = await freePort();
    this.replicaPort = await freePort();
    this.sentinelPort = await freePort();
    const mdir = mkdtempSync(join(this.dir, "master-"));
    const rdir = mkdtempSync(join(this.dir, "replica-"));
    const sdir = mkdtempSync(join(this.dir, "sentinel-"));
    const master = new Proc(this.masterPort, common(this.masterPort, mdir));
    const replica = new Proc(this.replicaPort, [...common(this.replicaPort, rdir), "--replicaof", "127.0.0.1", String(this.masterPort)]);
    this.procs.push(master, replica);
    await master.start(/Ready to accept connections/);
    await replica.start(/Ready to accept connections/);
    await until("replica in sync", 10_000, async () => /master_link_status:up/.test(await redisCli(this.replicaPort, ["INFO", "replication"])));

    const conf = join(sdir, "sentinel.conf");
    writeFileSync(
      conf,
      [
        `port ${this.sentinelPort}`,
        `bind 127.0.0.1`,
        `dir ${sdir}`,
        `sentinel monitor ${this.name} 127.0.0.1 ${this.masterPort} 1`,
        `sentinel down-after-milliseconds ${this.name} 1000`,
        `sentinel failover-timeout ${this.name} 5000`,
        `sentinel parallel-syncs ${this.name} 1`,
        "",
      ].join("\n"),
    );
    const sentinel = new Proc(this.sentinelPort, [conf, "--sentinel"]);
    this.procs.push(sentinel);
    await sentinel.start(/\+monitor master/);
    // SENTINEL FAILOVER needs a known, healthy replica: the sentinel learns it from the master's INFO.
    await until("sentinel knows the replica", 15_000, async () => {
      const out = await redisCli(this.sentinelPort, ["SENTINEL", "REPLICAS", this.name]);
      return out.includes(String(this.replicaPort)) && !/s_down|disconnected/.test(out);
    });
  }

  get url(): string {
    return `redis+sentinel://127.0.0.1:${this.sentinelPort}/${this.name}`;
  }

  /** The master's port as the sentinel reports it now. */
  async currentMasterPort(): Promise<number> {
    const out = await redisCli(this.sentinelPort, ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", this.name]);
    return Number(out.trim().split("\n")[1]);
  }

  /** `SENTINEL FAILOVER`, then waits until the sentinel reports the other server as master and it answers as one. */
  async failover(timeoutMs = 15_000): Promise<number> {
    const before = await this.currentMasterPort();
    const out = await redisCli(this.sentinelPort, ["SENTINEL", "FAILOVER", this.name]);
    if (!/OK/.test(out)) throw new Error(`SENTINEL FAILOVER: ${out}`);
    let after = before;
    await until("failover to the replica", timeoutMs, async () => {
      after = await this.currentMasterPort();
      return after !== before && /role:master/.test(await redisCli(after, ["INFO", "replication"]));
    });
    return after;
  }

  /** SIGKILLs the redis-server on `port` (the master or the replica): no shutdown, no final sync. */
  async kill(port: number): Promise<void> {
    const p = this.procs.find((x) => x.port === port);
    if (!p) throw new Error(`no redis-server of this setup on port ${port}`);
    await p.stop();
  }

  async dispose(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

