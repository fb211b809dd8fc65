// The live dashboard: reads /v1/stats/stream with fetch() so the operator key travels in the
// Authorization header (EventSource cannot send one, and a key in the URL ends up in logs).
// Everything shown is set as text, never as HTML: channel names are whatever clients chose.
"use strict";

const KEY = "edge-fanout.dashboard.key";
const HISTORY = 60;
const $ = (sel) => document.querySelector(sel);
const history = { connections: [], in: [], out: [], p99: [] };
let abort;
let last;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
const num = (n) => (n === undefined || n === null ? "–" : n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(Math.round(n * 100) / 100));
const ms = (s) => (s === undefined || s === null ? "–" : s * 1000 < 10 ? (s * 1000).toFixed(2) : (s * 1000).toFixed(0));
const bytes = (b) => (b === undefined ? "–" : b >= 2 ** 30 ? (b / 2 ** 30).toFixed(1) + " GiB" : b >= 2 ** 20 ? (b / 2 ** 20).toFixed(1) + " MiB" : (b / 1024).toFixed(0) + " KiB");
const ago = (t, now) => Math.max(0, Math.round((now - t) / 100) / 10) + " s";

function setStatus(text, live) {
  const s = $("#status");
  s.textContent = text;
  s.className = live ? "live" : "down";
}
function notice(text) {
  const n = $("#notice");
  n.textContent = text || "";
  n.hidden = !text;
}

function spark(name, value) {
  const h = history[name];
  h.push(value ?? 0);
  if (h.length > HISTORY) h.shift();
  const svg = document.querySelector(`svg[data-chart="${name}"]`);
  const max = Math.max(1e-9, ...h);
  const step = 120 / (HISTORY - 1);
  const off = HISTORY - h.length;
  const pts = h.map((v, i) => `${((off + i) * step).toFixed(1)},${(27 - (v / max) * 25).toFixed(1)}`).join(" ");
  let line = svg.querySelector("polyline");
  if (!line) {
    line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    svg.appendChild(line);
  }
  line.setAttribute("points", pts);
}

function put(k, text) {
  const e = document.querySelector(`[data-k="${k}"]`);
  if (e) e.textContent = text;
}

function render(snap) {
  last = snap;
  const { stats, alerts, access } = snap;
  const t = stats.totals;
  const relays = stats.relays;
  const worst = (q) => relays.reduce((m, r) => (r.latency && r.latency[q] > m ? r.latency[q] : m), 0);
  const withLatency = relays.some((r) => r.latency);
  put("relays", t.relays);
  put("states", Object.entries(t.states).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(" · "));
  put("connections", num(t.connections));
  put("subscriptions", `${num(t.subscriptions.channels)} / ${num(t.subscriptions.patterns)}`);
  put("in", num(t.rates.inPerSecond));
  put("out", num(t.rates.outPerSecond));
  put("latency", withLatency ? `${ms(worst("p50"))} / ${ms(worst("p99"))}` : "–");
  put("drops", num(t.slowConsumerDrops.total));
  put("dropReasons", `hard ${t.slowConsumerDrops.hard} · soft ${t.slowConsumerDrops.soft} · budget ${t.slowConsumerDrops.budget}`);
  put("replayed", `${num(t.replayed)} · ${num(t.resets)} · ${num(t.catchUps)}`);
  spark("connections", t.connections);
  spark("in", t.rates.inPerSecond);
  spark("out", t.rates.outPerSecond);
  spark("p99", worst("p99") * 1000);

  renderAlerts(alerts, access);
  renderRelays(relays, stats.generatedAt, stats.self);
  renderChannels(access === "names" ? stats.topChannels : null);
  const msg =
    access === "names"
      ? stats.partial ? "Redis cannot be read: showing this relay only." : ""
      : "Totals only: enter an operator key (a publisher key or a JWT with fanout.admin) to see relay ids, channel names and alert subjects.";
  notice([keyError, msg].filter(Boolean).join(" "));
  $("#updated").textContent = `updated ${new Date(stats.generatedAt).toLocaleTimeString()} · heartbeat ${stats.heartbeatMs} ms, TTL ${stats.ttlMs} ms`;
}

function renderAlerts(body, access) {
  const ul = $("#alerts");
  ul.replaceChildren();
  const list = body.alerts;
  const left = Object.values(body.omitted || {}).reduce((a, n) => a + n, 0);
  $("#alertCount").textContent = String(list.length + left);
  $("#alertBox").className = list.length + left > 0 ? "firing" : "ok";
  if (list.length === 0) ul.appendChild(el("li", "No active alerts", "none"));
  for (const a of list) {
    const li = el("li");
    li.dataset.kind = a.kind;
    li.appendChild(el("span", a.severity, `sev ${a.severity}`));
    li.appendChild(el("b", a.kind));
    if (a.subject !== undefined) li.appendChild(el("span", ` ${a.subject}`, "subject"));
    li.appendChild(el("span", ` — ${num(a.value)} > ${num(a.threshold)}`));
    if (a.relay !== undefined) li.appendChild(el("span", ` on ${a.relay}`, "muted"));
    li.appendChild(el("span", ` since ${new Date(a.since).toLocaleTimeString()}`, "muted"));
    ul.appendChild(li);
  }
  if (left > 0) ul.appendChild(el("li", `… and ${left} more channel alerts`, "muted"));
  if (access !== "names" && list.length > 0) ul.appendChild(el("li", "Subjects and relays are shown to operators only.", "muted"));
}

function renderRelays(relays, now, self) {
  const tb = $("#relays tbody");
  tb.replaceChildren();
  relays.forEach((r, i) => {
    const tr = el("tr");
    const name = r.id ?? `relay ${i + 1}`;
    tr.dataset.relay = name;
    const idCell = el("td", name, "name");
    if (r.id && r.id === self) idCell.appendChild(el("span", " (this relay)", "muted"));
    if (r.host) idCell.title = `${r.host} pid ${r.pid}`;
    tr.appendChild(idCell);
    const st = el("td");
    st.appendChild(el("span", r.state, `state ${r.state}`));
    tr.appendChild(st);
    const lat = r.latency ? `${ms(r.latency.p50)} / ${ms(r.latency.p99)}` : "–";
    const redis = r.broker === "memory" ? "embedded" : !r.brokerReady ? "unreachable" : r.redis ? `${bytes(r.redis.usedMemoryBytes)}${r.redis.maxMemoryBytes ? " / " + bytes(r.redis.maxMemoryBytes) : ""}` : "ok";
    const cells = [
      [num(r.connections), "num conns"],
      [num(r.subscriptions.channels), "num"],
      [num(r.subscriptions.patterns), "num"],
      [num(r.rates.inPerSecond), "num"],
      [num(r.rates.outPerSecond), "num"],
      [lat, "num"],
      [num(r.slowConsumerDrops.total), "num"],
      [num(r.replayed), "num"],
      [num(r.resets), "num"],
      [num(r.catchUps), "num"],
      [bytes(r.memory.rssBytes), "num"],
      [redis, r.broker !== "memory" && !r.brokerReady ? "bad" : ""],
      [ago(r.updatedAt, now), "num muted"],
    ];
    for (const [text, cls] of cells) tr.appendChild(el("td", text, cls));
    tb.appendChild(tr);
  });
}

function renderChannels(top) {
  const tb = $("#channels tbody");
  tb.replaceChildren();
  const note = $("#channelsNote");
  if (!top) {
    note.textContent = "Channel names are shown to operators only.";
    return;
  }
  const q = $("#search").value.trim().toLowerCase();
  const rows = q ? top.filter((c) => c.name.toLowerCase().includes(q)) : top;
  for (const c of rows) {
    const tr = el("tr");
    tr.dataset.name = c.name;
    tr.appendChild(el("td", c.kind));
    tr.appendChild(el("td", c.name, "name"));
    tr.appendChild(el("td", num(c.subscribers), "num subs"));
    tr.appendChild(el("td", num(c.perSecond), "num"));
    tb.appendChild(tr);
  }
  note.textContent = `${rows.length} of the fleet's ${top.length} busiest (each relay reports its top ones by message rate, then subscribers)${q ? ` matching “${q}”` : ""}.`;
}

// A minimal SSE reader: events are separated by a blank line, `data:` lines are joined.
async function readStream(res, onEvent) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let m;
    while ((m = /\r\n\r\n|\n\n|\r\r/.exec(buf))) {
      const block = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      let event = "message";
      const data = [];
      for (const line of block.split(/\r\n|\n|\r/)) {
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        let v = i < 0 ? "" : line.slice(i + 1);
        if (v.startsWith(" ")) v = v.slice(1);
        if (field === "event") event = v;
        else if (field === "data") data.push(v);
      }
      if (data.length) onEvent(event, data.join("\n"));
    }
  }
}

async function connect() {
  abort?.abort();
  const ctl = new AbortController();
  abort = ctl;
  const key = sessionStorage.getItem(KEY);
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  try {
    const res = await fetch("/v1/stats/stream", { headers, signal: ctl.signal, cache: "no-store" });
    if (res.status === 401 || res.status === 403) {
      const body = await res.json().catch(() => ({}));
      sessionStorage.removeItem(KEY);
      alertKey(`Key refused (${res.status} ${body.error?.code ?? ""}): ${body.error?.message ?? ""}`);
      return void setTimeout(connect, 0);
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    setStatus(key ? "live · operator" : "live", true);
    await readStream(res, (event, data) => {
      if (event === "stats") render(JSON.parse(data));
    });
    throw new Error("stream ended");
  } catch (err) {
    if (ctl.signal.aborted) return;
    setStatus(`reconnecting (${err.message})`, false);
    setTimeout(() => abort === ctl && connect(), 1000);
  }
}

let keyError = "";
function alertKey(text) {
  keyError = text;
  notice(text);
}

$("#keyForm").addEventListener("submit", (e) => {
  e.preventDefault();
  const v = $("#key").value.trim();
  $("#key").value = "";
  if (v) sessionStorage.setItem(KEY, v);
  keyError = "";
  connect();
});
$("#forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  connect();
});
$("#search").addEventListener("input", () => last && last.access === "names" && renderChannels(last.stats.topChannels));
connect();
