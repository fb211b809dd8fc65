/**
 * `npm run bench -- stalled`: the relay's memory under many stalled clients (issue 9).
 *
 * Starts the relay with its default slow-consumer settings, opens `--clients` SSE streams on
 * one channel that read up to `event: ready` and then never read again, plus one reader, and
 * publishes `--mb` MB in requests of 10 × 100 KB messages, each as soon as the previous one
 * is answered. Meanwhile it samples the relay's RSS (/proc, every 100 ms) and its
 * `fanout_queued_bytes` gauge and slow-consumer cuts (/metrics, every 250 ms).
 *
 *   npm run bench -- stalled                       # 1,000 stalled clients, 64 MB, relay-memory
 *   npm run bench -- stalled --clients 300 --mb 32 --budget 67108864 --target relay-redis
 *   npm run bench -- stalled --root /tmp/old       # another checkout's relay (e.g. before a change)
 *   npm run bench -- stalled --resume              # publish first; the stalled clients resume over it
 *
 * With `--resume` every stalled client gets its own replay frames (nothing shared), paced by
 * its socket: the case where the per-client limits and the budget, not sharing, bound memory.
 */
import { connect, type Socket } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { machine, sleep, treeRssBytes } from "./proc.js";
import { startTarget, type TargetName } from "./targets.js";

interface StalledArgs {
  clients: number;
  mb: number;
  budget?: number;
  target: TargetName;
  root: string;
  resume: boolean;
}

function parse(argv: string[]): StalledArgs {
  const a: StalledArgs = { clients: 1000, mb: 64, target: "relay-memory", root: join(dirname(fileURLToPath(import.meta.url)), ".."), resume: false };
  for (let i = 0; i < argv.length; i++) {
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${argv[i - 1]} needs a value`);
      return x;
    };
    switch (argv[i]) {
      case "--clients":
        a.clients = Number(v());
        break;
      case "--mb":
        a.mb = Number(v());
        break;
      case "--budget":
        a.budget = Number(v());
        break;
      case "--target":
        a.target = v() as TargetName;
        break;
      case "--root":
        a.root = resolve(v());
        break;
      case "--resume":
        a.resume = true;
        break;
      default:
        throw new Error(`unknown flag ${argv[i]} (stalled: --clients n --mb n --budget bytes --target relay-memory|relay-redis --root dir --resume)`);
    }
  }
  if (!a.target.startsWith("relay")) throw new Error("the stalled scenario runs against the relay only");
  return a;
}

/** An SSE stream that reads until `event: ready`, then either stops reading or counts messages. */
function stream(port: number, path: string, stall: boolean, lastEventId?: string): Promise<{ sock: Socket; id: string; messages(): number }> {
  return new Promise((resolveReady, reject) => {
    const sock = connect(port, "127.0.0.1");
    let seen = "";
    let ready = false;
    let count = 0;
    let tail = "";
    sock.setEncoding("latin1");
    const resume = lastEventId ? `Last-Event-ID: ${lastEventId}\r\n` : "";
    sock.on("connect", () => sock.write(`GET ${path} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n${resume}\r\n`));
    sock.on("data", (chunk: string) => {
      if (!ready) {
        seen += chunk;
        if (!seen.includes("event: ready")) return;
        ready = true;
        if (stall) sock.pause();
        const id = /id: (\S+)\nevent: ready/.exec(seen)?.[1] ?? "";
        resolveReady({ sock, id, messages: () => count });
        chunk = seen.slice(seen.indexOf("event: ready"));
        chunk = chunk.slice(chunk.indexOf("\n\n"));
      }
      // Every event has one `data:` line (JSON has no line breaks); the ready event is behind us.
      const s = tail + chunk;
      for (let i = s.indexOf("\ndata: "); i >= 0; i = s.indexOf("\ndata: ", i + 1)) count++;
      tail = s.slice(-6);
    });
    sock.on("error", (e) => {
      if (!ready) reject(e);
    });
    sock.on("close", () => {
      // Cut before its `ready` left the relay's queue (a budget cut while resuming): the
      // client would reconnect; here it simply counts as cut.
      if (!ready && seen.startsWith("HTTP/1.1 200")) resolveReady({ sock, id: "", messages: () => 0 });
      else if (!ready) reject(new Error(`stream closed before ready: ${JSON.stringify(seen.slice(0, 300))}`));
    });
  });
}

async function scrape(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(fanout_queued_bytes|fanout_connections|fanout_slow_consumer_disconnects_total|fanout_slow_consumer_disconnects_by_reason_total)\{(?:reason="(\w+)",)?relay="[^"]*"\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/gm)) {
    out[m[2] ?? m[1]] = Number(m[3]);
  }
  return out;
}

const mb = (b: number): string => (b / 1e6).toFixed(1);

export async function runStalled(argv: string[]): Promise<void> {
  const a = parse(argv);
  const m = machine();
  console.log(`edge-fanout bench: stalled clients — ${new Date().toISOString()}\nmachine: ${m.nproc} × ${m.cpu}, ${m.memGb} GB RAM, Linux ${m.kernel}, Node ${process.version}`);
  const relayEnv: Record<string, string> = { FANOUT_MAX_CONNECTIONS_PER_IP: String(a.clients + 10), FANOUT_MAX_CONNECTIONS: String(a.clients + 10) };
  // Every message of the run stays in the log, for --resume.
  if (a.resume) relayEnv.FANOUT_HISTORY_SIZE = String(Math.ceil(a.mb) * 10 + 10);
  if (a.budget !== undefined) relayEnv.FANOUT_QUEUE_BUDGET_BYTES = String(a.budget);
  const srv = await startTarget(a.target, { repoRoot: a.root, relayEnv });
  const socks: Socket[] = [];
  try {
    const channel = "stall";
    const path = `/v1/events?channel=${channel}`;
    const reader = await stream(srv.port, path, false);
    socks.push(reader.sock);
    const connectStalled = async (): Promise<void> => {
      for (let i = 0; i < a.clients; i += 100) {
        const batch = await Promise.all(Array.from({ length: Math.min(100, a.clients - i) }, () => stream(srv.port, path, true, a.resume ? reader.id : undefined)));
        socks.push(...batch.map((b) => b.sock));
      }
    };
    if (!a.resume) await connectStalled();
    await sleep(1000);
    const rssIdle = treeRssBytes(srv.pid);
    console.log(`${a.resume ? 0 : a.clients} stalled clients + 1 reader connected; relay RSS ${mb(rssIdle)} MB`);

    let peakRss = rssIdle;
    let peakQueued = 0;
    let last: Record<string, number> = {};
    const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, treeRssBytes(srv.pid))), 100);
    let scraping = false;
    const metricsTimer = setInterval(() => {
      if (scraping) return;
      scraping = true;
      void scrape(srv.port)
        .then((s) => {
          last = s;
          peakQueued = Math.max(peakQueued, s.fanout_queued_bytes ?? 0);
        })
        .catch(() => {})
        .finally(() => (scraping = false));
    }, 250);

    const payload = "x".repeat(100_000);
    const requests = Math.ceil(a.mb);
    const t0 = Date.now();
    for (let r = 0; r < requests; r++) {
      const body = JSON.stringify({ messages: Array.from({ length: 10 }, (_, k) => ({ channel, data: { i: r * 10 + k, payload } })) });
      const res = await fetch(`http://127.0.0.1:${srv.port}/v1/publish`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
      if (res.status !== 200) throw new Error(`publish answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
      await res.arrayBuffer();
    }
    const pubMs = Date.now() - t0;
    const total = requests * 10;
    for (const deadline = Date.now() + 60_000; reader.messages() < total && Date.now() < deadline; ) await sleep(100);
    if (a.resume) {
      const t1 = Date.now();
      await connectStalled();
      console.log(`${a.clients} stalled clients resumed over the ${mb(total * 100_000)} MB backlog in ${Date.now() - t1} ms`);
      await sleep(3000);
    }
    await sleep(2000);
    clearInterval(rssTimer);
    clearInterval(metricsTimer);
    const end = await scrape(srv.port);
    const rssEnd = treeRssBytes(srv.pid);
    const budget = a.budget ?? 256 * 1024 * 1024;
    console.log(`published ${total} messages (${mb(total * 100_000)} MB) in ${pubMs} ms; the reader got ${reader.messages()}`);
    console.log(`relay RSS: ${mb(rssIdle)} MB idle → peak ${mb(peakRss)} MB (+${mb(peakRss - rssIdle)}) → ${mb(rssEnd)} MB at the end`);
    if (end.fanout_queued_bytes !== undefined) console.log(`fanout_queued_bytes: peak ${mb(Math.max(peakQueued, last.fanout_queued_bytes ?? 0))} MB (sampled every 250 ms), ${mb(end.fanout_queued_bytes)} MB at the end; budget ${mb(budget)} MB`);
    const reasons = ["hard", "soft", "budget"].map((r) => `${r} ${end[r] ?? 0}`).join(", ");
    console.log(`slow-consumer cuts: ${end.fanout_slow_consumer_disconnects_total ?? 0} (${reasons}); connections open at the end: ${end.fanout_connections}`);
    console.log(
      `\n| clients | published | reader got | RSS idle MB | RSS peak MB | queued peak MB | budget MB | cuts (hard/soft/budget) |\n|---|---|---|---|---|---|---|---|\n| ${a.clients} | ${mb(total * 100_000)} MB | ${reader.messages()}/${total} | ${mb(rssIdle)} | ${mb(peakRss)} | ${mb(peakQueued)} | ${mb(budget)} | ${end.hard ?? 0}/${end.soft ?? 0}/${end.budget ?? 0} (total ${end.fanout_slow_consumer_disconnects_total ?? 0}) |`,
    );
  } finally {
    for (const s of socks) s.destroy();
    await srv.stop();
  }
}
