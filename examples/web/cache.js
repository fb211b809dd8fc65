// A page keeps fetched data in a local cache and drops entries when an invalidation is
// broadcast on `invalidate:default` (POST /v1/invalidate, a deploy hook, an edge function),
// then refetches them. After a `reset` (the stream could not resume: broadcasts may have been
// missed) it drops everything: stale data is worse than a cold cache.
import { FanoutClient } from "/examples/fanout-client.js";
import { currentUser, li, relay, showStatus, time } from "/examples/session.js";

const $ = (id) => document.getElementById(id);
const session = currentUser();
/** key → { value, tags, path, fetchedAt, version } */
const cache = new Map();

async function load() {
  const res = await fetch(`${relay}/examples/catalog.json`);
  const body = await res.json();
  for (const p of body.products) {
    if (!cache.has(p.key)) cache.set(p.key, { value: p, tags: ["catalog"], path: `/products/${p.key.split(":")[1]}`, fetchedAt: body.servedAt, version: body.version });
  }
  render();
}

function render() {
  $("products").replaceChildren(
    ...[...cache.entries()].map(([key, e]) => {
      const tr = document.createElement("tr");
      tr.dataset.key = key;
      for (const v of [key, e.value.name, `$${e.value.price}`, time(e.fetchedAt), String(e.version)]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      return tr;
    }),
  );
}

const client = new FanoutClient({ url: relay, token: session?.token, channels: ["invalidate:default"] });
window.cacheClient = client;
showStatus(client, $("status"));
client.on("invalidate", (m) => {
  const inv = m.data;
  const dropped = [];
  for (const [k, e] of cache) {
    if (inv.keys.includes(k) || e.tags.some((t) => inv.tags.includes(t)) || inv.paths.includes(e.path)) {
      cache.delete(k);
      dropped.push(k);
    }
  }
  $("log").prepend(li(`${time(m.ts)} ${inv.source}${inv.deployId ? ` deploy ${inv.deployId}` : ""}: dropped ${dropped.join(", ") || "nothing"}`));
  void load();
});
client.onReset(() => {
  cache.clear();
  $("log").prepend(li("reset: dropped the whole cache", "system"));
  void load();
});

async function invalidate(body) {
  const headers = { "Content-Type": "application/json", ...(session ? { Authorization: `Bearer ${session.token}` } : {}) };
  const res = await fetch(`${relay}/v1/invalidate`, { method: "POST", headers, body: JSON.stringify(body) });
  const out = await res.json();
  $("result").textContent = res.ok ? `sent (${out.receivers} receivers)` : `${res.status} ${out.error?.code}: ${out.error?.message}`;
}
$("invalidate").addEventListener("click", () => void invalidate({ keys: ["product:1"] }));
$("invalidateTag").addEventListener("click", () => void invalidate({ tags: ["catalog"] }));

void load();
