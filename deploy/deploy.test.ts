import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { DockerfileParser, type Instruction } from "dockerfile-ast";
import { validate, ValidationSeverity } from "dockerfile-utils";
import { afterEach, describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { loadConfig } from "../relay/config.js";
import { RelayMetrics } from "../relay/metrics.js";
import { startRelay, type RunningRelay } from "../test/support/relay-harness.js";
import { freePort } from "../test/support/redis-server.js";

/*
 * The deploy artifacts, checked with tools that run here: no container is built or run (no
 * image registry is reachable). The Dockerfile is linted (dockerfile-utils, the validator
 * behind VS Code's Docker support) and its policy read with dockerfile-ast; the compose file
 * goes through Debian's `docker-compose config`; the systemd unit through
 * `systemd-analyze verify`; the Kubernetes manifests are parsed and cross-checked here.
 */

const ROOT = resolve(import.meta.dirname, "..");
const read = (p: string) => readFileSync(join(ROOT, p), "utf8");

// --- Dockerfile -------------------------------------------------------------------------

const DOCKERFILE = read("deploy/Dockerfile");
const dockerfile = DockerfileParser.parse(DOCKERFILE);

/** The instructions of each build stage, by stage name. */
function stages(): Map<string, Instruction[]> {
  const out = new Map<string, Instruction[]>();
  let current: Instruction[] | undefined;
  for (const i of dockerfile.getInstructions()) {
    if (i.getKeyword() === "FROM") {
      const name = /\sAS\s+(\S+)\s*$/i.exec(i.getArgumentsContent() ?? "")?.[1] ?? `#${out.size}`;
      out.set(name, (current = []));
    } else current?.push(i);
  }
  return out;
}

const args = (i: Instruction) => i.getArgumentsContent() ?? "";
const ofKind = (list: Instruction[], kw: string) => list.filter((i) => i.getKeyword() === kw);
/** The JSON (exec form) argument list of a CMD, or of HEALTHCHECK's CMD; throws on the shell form. */
function execForm(text: string): string[] {
  const json = /(\[.*\])\s*$/s.exec(text)?.[1];
  if (!json) throw new Error(`not exec form: ${text}`);
  return JSON.parse(json);
}

/** Does `.dockerignore` leave `path` out of the build context? (`*` and a leading `**∕`, no `!`.) */
function dockerIgnored(path: string): boolean {
  const patterns = read(".dockerignore")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  expect(patterns.some((p) => p.startsWith("!"))).toBe(false);
  const parts = path.split("/");
  return patterns.some((p) => {
    const re = new RegExp(`^${p.replace(/\./g, "\\.").replace(/^\*\*\//, "(?:.*/)?").replace(/\*/g, "[^/]*")}$`);
    return parts.some((_, n) => re.test(parts.slice(0, n + 1).join("/")));
  });
}

/** Every file `entry` reaches through relative imports and `new URL("…", import.meta.url)` reads. */
function closure(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (!file.endsWith(".ts")) continue;
    const src = read(file);
    const refs = [...src.matchAll(/(?:from\s+|import\s*\(\s*)"(\.{1,2}\/[^"]+)"|new URL\(\s*"(\.{1,2}\/[^"]+)",\s*import\.meta\.url\)/g)];
    for (const m of refs) {
      let target = relative(ROOT, resolve(ROOT, dirname(file), m[1] ?? m[2]));
      if (m[1] && target.endsWith(".js")) target = target.replace(/\.js$/, ".ts");
      expect(existsSync(join(ROOT, target)), `${file} refers to ${target}`).toBe(true);
      todo.push(target);
    }
  }
  return seen;
}

describe("deploy/Dockerfile", () => {
  const runtime = stages().get("runtime")!;

  it("passes the Dockerfile linter with every rule an error", () => {
    const all = ValidationSeverity.ERROR;
    const diagnostics = validate(DOCKERFILE, {
      deprecatedMaintainer: all,
      directiveCasing: all,
      emptyContinuationLine: all,
      instructionCasing: all,
      instructionCmdMultiple: all,
      instructionEntrypointMultiple: all,
      instructionHealthcheckMultiple: all,
      instructionJSONInSingleQuotes: all,
      instructionWorkdirRelative: all,
    });
    expect(diagnostics.map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
    // The linter is no pushover: a broken file fails it.
    expect(validate(`${DOCKERFILE}\nHEALTHCHECK --interval=soon CMD true\nUSER\n`).length).toBeGreaterThanOrEqual(2);
  });

  it("is multi-stage; the runtime stage (the last, the default) gets production dependencies only and runs as a non-root user", () => {
    const names = [...stages().keys()];
    expect(names.length).toBeGreaterThanOrEqual(2);
    expect(names[names.length - 1]).toBe("runtime");
    // node_modules comes from a stage that ran `npm ci --omit=dev`, and nothing in the runtime
    // stage installs more.
    const fromStage = ofKind(runtime, "COPY")
      .map((c) => (c as unknown as { getFromFlag(): { getValue(): string } | null }).getFromFlag()?.getValue())
      .filter((s): s is string => !!s);
    expect(fromStage.length).toBeGreaterThan(0);
    for (const s of fromStage) {
      const runs = ofKind(stages().get(s)!, "RUN").map(args);
      expect(runs.some((r) => /\bnpm ci\b.*--omit=dev\b/.test(r)), `stage ${s} runs npm ci --omit=dev`).toBe(true);
      expect(runs.some((r) => /\bnpm (ci|install)\b(?!.*--omit=dev)/.test(r)), `stage ${s} installs dev dependencies`).toBe(false);
    }
    expect(ofKind(runtime, "RUN").some((r) => /\bnpm (ci|install)\b/.test(args(r)))).toBe(false);
    // tsx must be a production dependency: the image starts the relay with it.
    expect(JSON.parse(read("package.json")).dependencies.tsx).toBeDefined();
    const users = ofKind(runtime, "USER").map(args);
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1].trim()).not.toMatch(/^(root|0)(:|$)/);
  });

  it("starts Node itself (exec form, no npm or shell), the same program as npm start, and it drains on SIGTERM", async () => {
    const cmds = ofKind(runtime, "CMD");
    expect(ofKind(runtime, "ENTRYPOINT")).toEqual([]);
    const cmd = execForm(args(cmds[cmds.length - 1]));
    expect(cmd[0]).toBe("node");
    expect(cmd.slice(1)).toEqual(["--import", ...JSON.parse(read("package.json")).scripts.start.split(" ")]);
    expect(ofKind(runtime, "STOPSIGNAL").map(args).map((s) => s.trim())).toEqual(["SIGTERM"]);

    // The image's command, run here from the repository: SIGTERM drains and exits 0.
    const port = await freePort();
    const proc = spawn(process.execPath, cmd.slice(1), { cwd: ROOT, env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", FANOUT_DRAIN_GRACE_MS: "2000", REDIS_URL: "" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout!.on("data", (b) => (out += b));
    proc.stderr!.on("data", (b) => (out += b));
    const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
    try {
      const end = Date.now() + 15_000;
      while (!out.includes("listening")) {
        if (Date.now() > end || proc.exitCode !== null) throw new Error(`relay did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      proc.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(out).toContain("SIGTERM: draining");
    } finally {
      if (proc.exitCode === null) proc.kill("SIGKILL");
    }
  });

  describe("HEALTHCHECK", () => {
    let relay: RunningRelay | undefined;
    afterEach(async () => {
      await relay?.stop();
      relay = undefined;
    });
    const check = ofKind(runtime, "HEALTHCHECK");
    /** The HEALTHCHECK command, run as Docker would (async: the relay is in this process). */
    const probe = (port: number) => {
      const cmd = execForm(args(check[0]));
      expect(cmd[0]).toBe("node");
      const p = spawn(process.execPath, cmd.slice(1), { env: { ...process.env, PORT: String(port) }, stdio: "ignore", timeout: 10_000 });
      return new Promise<number | null>((r) => p.on("exit", (code) => r(code)));
    };

    it("asks /readyz with Node's fetch (no curl in the image): 0 when ready, 1 when draining or down", async () => {
      expect(check).toHaveLength(1);
      expect(args(check[0])).toContain("/readyz");
      relay = await startRelay();
      expect(await probe(relay.port)).toBe(0);
      relay.relay.context.draining = true;
      expect(await probe(relay.port)).toBe(1);
      expect(await probe(await freePort())).toBe(1);
    });
  });

  it("copies everything the relay and the REST bridge load, and .dockerignore keeps none of it out", () => {
    const copies = ofKind(runtime, "COPY")
      .filter((c) => !(c as unknown as { getFromFlag(): unknown }).getFromFlag())
      .map((c) => args(c).trim().split(/\s+/));
    // Each lands where it is in the repository, relative to WORKDIR (imports are relative).
    for (const parts of copies) {
      const dest = parts[parts.length - 1];
      for (const src of parts.slice(0, -1)) expect(src.includes("/") || dest === "./" || dest.replace(/^\.\//, "") === src, `COPY ${parts.join(" ")}`).toBe(true);
    }
    const copied = copies.flatMap((parts) => parts.slice(0, -1));
    for (const src of copied) {
      expect(existsSync(join(ROOT, src)), src).toBe(true);
      expect(dockerIgnored(src), `${src} is in .dockerignore`).toBe(false);
    }
    const needed = new Set([...closure("relay/main.ts"), ...closure("tools/upstash-rest-server.ts")]);
    for (const file of needed) {
      expect(
        copied.some((src) => file === src || file.startsWith(`${src}/`)),
        `${file} is loaded at run time but not copied into the runtime stage`,
      ).toBe(true);
      expect(dockerIgnored(file), `${file} is loaded at run time but in .dockerignore`).toBe(false);
    }
    expect(needed.has("relay/public/index.html")).toBe(true);
    // Secrets and host-built modules never enter the build context.
    for (const p of [".dev.vars", "node_modules", "node_modules/hono/package.json", ".git", "client/node_modules/x", ".env.local"]) expect(dockerIgnored(p), p).toBe(true);
  });
});

// --- docker-compose.yml -----------------------------------------------------------------

/** `docker-compose config` (Debian's docker-compose): the file as Compose understands it, or its error. */
function composeConfig(): any {
  const r = spawnSync("docker-compose", ["-f", "docker-compose.yml", "config"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  if (r.error) throw new Error(`cannot run docker-compose (apt-get install -y docker-compose): ${r.error.message}`);
  expect(r.stderr, "docker-compose config").not.toMatch(/error|invalid/i);
  expect(r.status).toBe(0);
  return parseYaml(r.stdout);
}

/** A Compose / systemd duration ("20s", "1m30s", "20") in ms. */
function durationMs(v: string | number): number {
  if (typeof v === "number" || /^\d+$/.test(v)) return Number(v) * 1000;
  let ms = 0;
  for (const [, n, unit] of String(v).matchAll(/(\d+)\s*(ms|s|m|h|min|sec)?/g)) ms += Number(n) * ({ ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000 }[unit ?? "s"] ?? 1000);
  return ms;
}

describe("docker-compose.yml", () => {
  const config = composeConfig();
  const services = config.services as Record<string, any>;
  const relays = ["relay1", "relay2"];

  it("is valid Compose; builds the relays from deploy/Dockerfile's runtime stage with a valid relay configuration", () => {
    for (const name of relays) {
      const s = services[name];
      expect(s.build.dockerfile).toBe("deploy/Dockerfile");
      expect(s.build.target).toBe("runtime");
      expect(() => loadConfig(s.environment)).not.toThrow();
      // docker stop waits this long before SIGKILL: more than the drain.
      const drain = loadConfig(s.environment).drainGraceMs;
      expect(durationMs(s.stop_grace_period)).toBeGreaterThan(drain);
    }
    for (const s of Object.values(services)) if (s.build) expect([...stages().keys()]).toContain(s.build.target);
    expect(services.redis).toBeDefined();
    expect(services["upstash-rest"].command.join(" ")).toContain("tools/upstash-rest-server.ts");
    expect(services.functions.command.slice(0, 3)).toEqual(["npx", "wrangler", "dev"]);
    expect(services.functions.environment.CLOUDFLARE_CF_FETCH_ENABLED).toBe("false");
  });

  it("puts nginx with deploy/nginx.conf in front of the relays, which trust X-Forwarded-For from its network only", () => {
    const nginx = services.nginx;
    const mounts = (nginx.volumes as Array<string | { source: string; target: string }>).map((v) => (typeof v === "string" ? v : `${v.source}:${v.target}`));
    expect(mounts.some((m) => m.startsWith(`${join(ROOT, "deploy/nginx.conf")}:/etc/nginx/nginx.conf`))).toBe(true);
    const conf = read("deploy/nginx.conf");
    for (const name of relays) {
      // nginx.conf's upstreams are these services on the port they listen on.
      expect(conf).toContain(`server ${name}:${services[name].environment.PORT};`);
      expect(Object.keys(services[name].networks)).toContain("proxy");
      // Not reachable around the proxy.
      expect(services[name].ports).toBeUndefined();
    }
    expect(Object.keys(nginx.networks)).toEqual(["proxy"]);
    const subnets = (config.networks.proxy.ipam.config as Array<{ subnet: string }>).map((c) => c.subnet);
    for (const name of relays) expect(services[name].environment.FANOUT_TRUSTED_PROXIES).toBe(subnets.join(","));
    // Only nginx and the relays are on that network.
    const onProxy = Object.entries(services).filter(([, s]) => Object.keys(s.networks ?? {}).includes("proxy")).map(([n]) => n);
    expect(onProxy.sort()).toEqual(["nginx", ...relays].sort());
  });
});

// --- deploy/nginx.conf ------------------------------------------------------------------

describe("deploy/nginx.conf", () => {
  const conf = read("deploy/nginx.conf");

  it("has the settings SSE needs, and the README's Deploy section quotes them as they are", () => {
    for (const line of ["proxy_buffering off;", "proxy_http_version 1.1;", 'proxy_set_header Connection "";', "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"]) {
      expect(conf).toContain(line);
    }
    const timeout = /proxy_read_timeout\s+(\S+);/.exec(conf)?.[1];
    expect(durationMs(timeout!)).toBeGreaterThan(4 * loadConfig({}).heartbeatMs);
    const readme = read("README.md");
    const deploy = readme.slice(readme.indexOf("## Deploy"));
    const snippet = /```nginx\n([\s\S]*?)```/.exec(deploy)?.[1];
    expect(snippet, "an nginx snippet in the README's Deploy section").toBeDefined();
    const directives = snippet!.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter((l) => l.endsWith(";"));
    expect(directives.length).toBeGreaterThanOrEqual(5);
    for (const d of directives) expect(conf, `README: ${d}`).toContain(d);
  });
});

// --- deploy/fanout-relay.service --------------------------------------------------------

describe("deploy/fanout-relay.service", () => {
  const unit = read("deploy/fanout-relay.service");
  const keys = new Map<string, string[]>();
  for (const line of unit.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) keys.set(m[1], [...(keys.get(m[1]) ?? []), m[2]]);
  }
  const one = (k: string) => keys.get(k)?.at(-1);

  it("passes systemd-analyze verify without a warning", () => {
    const r = spawnSync("systemd-analyze", ["verify", join(ROOT, "deploy/fanout-relay.service")], { encoding: "utf8", timeout: 30_000 });
    if (r.error) throw new Error(`cannot run systemd-analyze (apt-get install -y systemd): ${r.error.message}`);
    // Lines about the unit file itself (a missing User or binary on this machine is not one).
    const own = `${r.stdout}${r.stderr}`.split("\n").filter((l) => l.includes("fanout-relay.service:"));
    expect(own).toEqual([]);
  });

  it("runs Node directly, stops with SIGTERM and waits longer than the drain, restarts on failure, and is hardened", () => {
    expect(one("ExecStart")).toMatch(/^\/\S*node --import tsx relay\/main\.ts$/);
    expect(one("KillSignal")).toBe("SIGTERM");
    const env = Object.fromEntries((keys.get("Environment") ?? []).map((e) => e.split("=", 2) as [string, string]));
    const drain = loadConfig(env).drainGraceMs;
    expect(durationMs(one("TimeoutStopSec")!)).toBeGreaterThan(drain);
    expect(one("Restart")).toBe("on-failure");
    expect(one("NoNewPrivileges")).toBe("yes");
    expect(one("ProtectSystem")).toBe("strict");
    expect(one("User")).not.toMatch(/^(root|0)?$/);
    // V8 needs writable+executable memory: MemoryDenyWriteExecute would kill Node.
    expect(keys.has("MemoryDenyWriteExecute")).toBe(false);
  });
});

// --- deploy/k8s -------------------------------------------------------------------------

describe("deploy/k8s", () => {
  const docs = ["relay.yaml", "hpa.yaml"].flatMap((f) =>
    parseAllDocuments(read(`deploy/k8s/${f}`)).map((d) => {
      expect(d.errors, f).toEqual([]);
      return d.toJS();
    }),
  );
  const byKind = (k: string) => docs.filter((d) => d.kind === k);

  it("parses, and every object has apiVersion, kind and metadata.name", () => {
    for (const d of docs) {
      expect(typeof d.apiVersion).toBe("string");
      expect(typeof d.kind).toBe("string");
      expect(d.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    expect(docs.map((d) => d.kind).sort()).toEqual(["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]);
  });

  it("the Deployment: readiness on /readyz, liveness on /healthz, preStop and a grace period covering the drain, non-root", () => {
    const [dep] = byKind("Deployment");
    const labels = dep.spec.template.metadata.labels;
    expect(dep.spec.selector.matchLabels).toEqual(labels);
    const pod = dep.spec.template.spec;
    const [c] = pod.containers;
    const env = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    const config = loadConfig(env);
    expect(c.ports.map((p: { containerPort: number }) => p.containerPort)).toContain(config.port);
    const named = (port: string | number) => (typeof port === "number" ? port : c.ports.find((p: { name: string }) => p.name === port)?.containerPort);
    expect([c.readinessProbe.httpGet.path, named(c.readinessProbe.httpGet.port)]).toEqual(["/readyz", config.port]);
    expect([c.livenessProbe.httpGet.path, named(c.livenessProbe.httpGet.port)]).toEqual(["/healthz", config.port]);
    const pre = c.lifecycle.preStop.exec.command as string[];
    expect(pre[0]).toBe("sleep");
    const preStopMs = Number(pre[1]) * 1000;
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(preStopMs + config.drainGraceMs);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    // A read-only root needs a writable /tmp for tsx's cache.
    if (c.securityContext.readOnlyRootFilesystem) expect(c.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).toContain("/tmp");
    expect(config.trustedProxies.size).toBeGreaterThan(0);

    const [svc] = byKind("Service");
    expect(svc.spec.selector).toEqual(labels);
    expect(named(svc.spec.ports[0].targetPort)).toBe(config.port);
    const [pdb] = byKind("PodDisruptionBudget");
    expect(pdb.spec.selector.matchLabels).toEqual(labels);
    expect(pdb.spec.maxUnavailable ?? dep.spec.replicas - pdb.spec.minAvailable).toBeLessThan(dep.spec.replicas);
  });

  it("the HPA scales the Deployment on fanout_connections (a Pods metric the relay exports) with CPU as a fallback", async () => {
    const [hpa] = byKind("HorizontalPodAutoscaler");
    const [dep] = byKind("Deployment");
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: dep.metadata.name });
    const pods = hpa.spec.metrics.find((m: { type: string }) => m.type === "Pods");
    expect(pods.pods.metric.name).toBe("fanout_connections");
    expect(hpa.spec.metrics.find((m: { type: string }) => m.type === "Resource").resource.name).toBe("cpu");
    // The metric is the relay's own gauge, without labels that would split it.
    const metric = await new RelayMetrics().registry.getSingleMetric("fanout_connections")?.get();
    expect(metric?.type).toBe("gauge");
    expect(Number(pods.pods.target.averageValue)).toBeLessThan(loadConfig({}).maxConnections);
    expect(read("deploy/k8s/hpa.yaml")).toMatch(/prometheus-adapter/i);
  });
});
