// Per-user notifications: each user's token allows `user:<id>:*` only, so the page follows
// `user:<id>:notifications`, and asking for another user's channel is refused by the relay
// (403 forbidden) — the page shows the refusal; nothing of that channel is ever delivered.
import { FanoutClient, publish } from "/examples/fanout-client.js";
import { li, refresh, relay, showStatus, signedIn, time } from "/examples/session.js";

const $ = (id) => document.getElementById(id);
signedIn(start);

function start({ user, token }) {
  const channel = `user:${user}:notifications`;
  $("channel").textContent = channel;

  const client = new FanoutClient({ url: relay, token, getToken: () => refresh(user), channels: [channel], shareTabs: { group: `${relay}:${user}` } });
  window.notifications = client;
  showStatus(client, $("status"));
  client.on("*", (m) => {
    const text = typeof m.data === "string" ? m.data : (m.data?.text ?? JSON.stringify(m.data));
    const from = m.data?.from ? `from ${m.data.from}: ` : "";
    $("inbox").prepend(li(`${time(m.ts)} ${m.channel === channel ? "" : `[${m.channel}] `}${from}${text}`));
  });
  client.onError((err) => ($("peekResult").textContent = `${err.status} ${err.code}: ${err.message}`));

  $("notify").addEventListener("submit", async (e) => {
    e.preventDefault();
    const to = $("to").value.trim();
    try {
      const r = await publish(relay, { channel: `user:${to}:notifications`, type: "notification", data: { text: $("text").value, from: user } }, { key: token });
      $("sent").textContent = `sent to ${to} (id ${r.id})`;
      $("text").value = "";
    } catch (err) {
      $("sent").textContent = `${err.status} ${err.code}: ${err.message}`;
    }
  });

  $("peek").addEventListener("submit", async (e) => {
    e.preventDefault();
    const other = `user:${$("other").value.trim()}:notifications`;
    const result = $("peekResult");
    result.className = "";
    try {
      await client.subscribe({ channels: [other] });
      result.textContent = `subscribed to ${other}`;
    } catch (err) {
      result.className = "error";
      result.textContent = `refused: ${err.status} ${err.code} — ${err.message}`;
    }
  });
}
