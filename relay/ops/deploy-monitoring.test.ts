import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { relayFixture } from "../../test/support/relay-harness.js";
import { ALERT_KINDS } from "./alerts.js";

/**
 * deploy/prometheus/alerts.yml and deploy/grafana/edge-fanout.json, checked against a real
 * relay: every metric they read exists in its /metrics, every label they select or group by
 * exists on that metric. YAML is parsed by Debian's python3-yaml (no npm YAML parser here).
 */
const ROOT = join(import.meta.dirname, "../..");
const METRIC = /\bfanout_[a-z0-9_]+/g;

function parseYaml(path: string): any {
  const out = execFileSync("python3", ["-c", "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)", path], { encoding: "utf8" });
  return JSON.parse(out);
}

/** Sample names /metrics exposes, from its `# TYPE` lines (a histogram's as _bucket, _sum, _count). */
function exposed(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
    else names.add(name);
  }
  return names;
}

describe("monitoring files in deploy/", () => {
  const { start } = relayFixture();

  async function catalogue() {
    const r = await start();
    const text = await (await fetch(`${r.base}/metrics`)).text();
    const names = exposed(text);
    // Label names per sample name: declared ones (present before any sample), plus the relay's default label.
    const labels = new Map<string, Set<string>>();
    for (const m of r.relay.context.metrics.registry.getMetricsAsArray()) {
      const set = new Set<string>([...((m as unknown as { labelNames?: string[] }).labelNames ?? []), "relay"]);
      for (const n of names) if (n === m.name || n.startsWith(m.name + "_")) labels.set(n, new Set([...(labels.get(n) ?? []), ...set, ...(n.endsWith("_bucket") ? ["le"] : [])]));
    }
    return { names, labels, text };
  }

  /** Every metric an expression reads exists; every label it selects on exists on that metric; `by (…)` labels exist on one of them. */
  function checkExpr(expr: string, cat: Awaited<ReturnType<typeof catalogue>>, where: string) {
    const used = [...new Set(expr.match(METRIC) ?? [])];
    expect(used.length, `${where}: reads no fanout metric: ${expr}`).toBeGreaterThan(0);
    for (const name of used) expect(cat.names.has(name), `${where}: ${name} is not in /metrics`).toBe(true);
    for (const [, name, body] of expr.matchAll(/\b(fanout_[a-z0-9_]+)\{([^}]*)\}/g)) {
      for (const [, label, value] of body.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*"([^"]*)"/g)) {
        expect(cat.labels.get(name)?.has(label), `${where}: ${name} has no label ${label}`).toBe(true);
        if (label === "kind" && name === "fanout_alerts_active") expect(ALERT_KINDS).toContain(value);
      }
    }
    const all = new Set(used.flatMap((n) => [...(cat.labels.get(n) ?? [])]));
    for (const [, list] of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
      for (const label of list.split(",").map((s) => s.trim()).filter(Boolean)) expect(all.has(label), `${where}: no metric in it has label ${label}: ${expr}`).toBe(true);
    }
    let depth = 0;
    for (const ch of expr) {
      depth += ch === "(" ? 1 : ch === ")" ? -1 : 0;
      expect(depth, `${where}: unbalanced parentheses`).toBeGreaterThanOrEqual(0);
    }
    expect(depth, `${where}: unbalanced parentheses`).toBe(0);
  }

  it("the Prometheus rules parse, are well formed and read only metrics and labels a relay exposes", async () => {
    const cat = await catalogue();
    const doc = parseYaml(join(ROOT, "deploy/prometheus/alerts.yml"));
    const rules = doc.groups.flatMap((g: { name: string; rules: unknown[] }) => {
      expect(g.name).toBeTruthy();
      return g.rules;
    });
    const names = rules.map((r: { alert: string }) => r.alert);
    // One rule per health alert the relay raises itself (and a latency rule).
    expect(names).toEqual(
      expect.arrayContaining([
        "FanoutRedisUnreachable",
        "FanoutRelayMemoryHigh",
        "FanoutRedisMemoryHigh",
        "FanoutChannelSubscribersHigh",
        "FanoutChannelsInactive",
        "FanoutCatchUpsSpiking",
        "FanoutResetsSpiking",
        "FanoutSlowConsumerDropsSpiking",
      ]),
    );
    expect(new Set(names).size).toBe(names.length);
    for (const r of rules) {
      expect(typeof r.expr, r.alert).toBe("string");
      expect(["info", "warning", "critical"], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      if (r.for !== undefined) expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      checkExpr(r.expr, cat, r.alert);
    }
  });

  it("the Grafana dashboard parses and every query reads metrics and labels a relay exposes", async () => {
    const cat = await catalogue();
    const dash = JSON.parse(readFileSync(join(ROOT, "deploy/grafana/edge-fanout.json"), "utf8"));
    expect(dash.uid).toBe("edge-fanout");
    const panels = dash.panels.filter((p: { type: string }) => p.type !== "row");
    expect(panels.length).toBeGreaterThan(10);
    const exprs: Array<[string, string]> = panels.flatMap((p: { title: string; targets: Array<{ expr: string }> }) => {
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      return p.targets.map((t) => [p.title, t.expr] as [string, string]);
    });
    for (const [title, expr] of exprs) {
      checkExpr(expr, cat, title);
      // Every query follows the relay picker.
      for (const [, name, body] of expr.matchAll(/\b(fanout_[a-z0-9_]+)(\{[^}]*\})?/g)) expect(body ?? "", `${title}: ${name} ignores $relay`).toContain('relay=~"$relay"');
    }
    const variable = dash.templating.list.find((v: { name: string }) => v.name === "relay");
    checkExpr(variable.query.query, cat, "relay variable");
    // The panels the operators' view needs.
    const read = exprs.map(([, e]) => e).join("\n");
    for (const m of [
      "fanout_connections",
      "fanout_messages_in_total",
      "fanout_messages_out_total",
      "fanout_publish_to_write_seconds_bucket",
      "fanout_slow_consumer_disconnects_by_reason_total",
      "fanout_replayed_total",
      "fanout_resets_total",
      "fanout_catchups_total",
      "fanout_queued_bytes",
    ]) {
      expect(read).toContain(m);
    }
    // Never a label an operator could not bound (a channel, client or token).
    expect(cat.text).not.toMatch(/\b(channel|pattern|client|token|ip)="/);
  });
});
