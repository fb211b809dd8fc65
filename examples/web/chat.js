// Chat on edge-fanout: rooms are channels `chat:<room>` (with presence: the relay runs with
// FANOUT_PRESENCE_CHANNELS=chat:*), private messages go to `user:<id>:dm`, and a moderator
// view follows every room with the pattern `chat:*`. Joining a room adds it to the open
// stream (client.subscribe) with its history since this user's first visit (`since`).
import { FanoutClient, publish } from "/examples/fanout-client.js";
import { li, refresh, relay, showStatus, signedIn, time } from "/examples/session.js";

const $ = (id) => document.getElementById(id);
signedIn(start);

function start({ user, token }) {

  /** room → { lines, roster: Map<sub, member>, live } */
  const rooms = new Map();
  let current = "general";
  const sinceKey = `fanout-chat-since:${user}`;
  const client = new FanoutClient({ url: relay, token, getToken: () => refresh(user), channels: [`user:${user}:dm`], shareTabs: { group: `${relay}:${user}` } });
  window.chat = client;
  showStatus(client, $("status"));
  client.onReady(() => {
    // Where this user's history starts: rooms joined later replay what was said since then.
    if (!localStorage.getItem(sinceKey) && client.lastEventId) localStorage.setItem(sinceKey, client.lastEventId);
  });
  client.onReset(() => addLine(current, "some history is no longer available", "system"));
  client.onError((err) => ($("sendError").textContent = `${err.code}: ${err.message}`));

  const roomOf = (m) => m.channel.slice("chat:".length);
  client.on("chat.message", (m) => addLine(roomOf(m), `${time(m.ts)} ${m.data.from}: ${m.data.text}`));
  client.on("presence", (m) => {
    const room = roomOf(m);
    const r = rooms.get(room);
    const who = m.data.member.sub;
    if (r?.live) {
      if (m.data.action === "join") r.roster.set(who, m.data.member);
      else r.roster.delete(who);
      render();
    }
    addLine(room, `${who} ${m.data.action === "join" ? "joined" : "left"}`, "system");
  });
  client.on("dm", (m) => {
    $("dms").append(li(`${time(m.ts)} ${m.data.from} → you: ${m.data.text}`, "dm"));
  });

  function addLine(room, text, cls) {
    const r = rooms.get(room);
    if (!r) return;
    r.lines.push({ text, cls });
    if (room === current) $("messages").append(li(text, cls));
  }

  function render() {
    const box = $("rooms");
    box.replaceChildren();
    for (const name of rooms.keys()) {
      const b = document.createElement("button");
      b.className = `secondary${name === current ? " active" : ""}`;
      b.textContent = `#${name}`;
      b.dataset.room = name;
      b.onclick = () => {
        current = name;
        render();
      };
      box.append(b);
    }
    $("roomTitle").textContent = `#${current}`;
    const r = rooms.get(current);
    $("messages").replaceChildren(...(r?.lines ?? []).map((l) => li(l.text, l.cls)));
    $("roster").replaceChildren(...[...(r?.roster.values() ?? [])].map((m) => li(m.info?.name ?? m.sub)));
  }

  async function join(room) {
    if (rooms.has(room)) {
      current = room;
      return render();
    }
    rooms.set(room, { lines: [], roster: new Map(), live: false });
    current = room;
    render();
    const since = localStorage.getItem(sinceKey) ?? undefined;
    await client.subscribe({ channels: [`chat:${room}`] }, since ? { since } : {});
    // Who was already here; join/leave events keep it current from now on.
    const list = await client.presence(`chat:${room}`);
    const r = rooms.get(room);
    if (!r) return;
    for (const m of list.members) r.roster.set(m.sub, m);
    r.live = true;
    render();
  }

  async function leave(room) {
    if (!rooms.has(room)) return;
    rooms.delete(room);
    current = rooms.keys().next().value ?? "general";
    render();
    await client.unsubscribe({ channels: [`chat:${room}`] });
  }

  const say = (channel, type, data) => publish(relay, { channel, type, data }, { key: token }).catch((err) => ($("sendError").textContent = `${err.code}: ${err.message}`));

  $("send").addEventListener("submit", (e) => {
    e.preventDefault();
    void say(`chat:${current}`, "chat.message", { from: user, text: $("text").value });
    $("text").value = "";
  });
  $("dmForm").addEventListener("submit", (e) => {
    e.preventDefault();
    const to = $("dmTo").value.trim();
    const text = $("dmText").value;
    void say(`user:${to}:dm`, "dm", { from: user, text }).then(() => $("dms").append(li(`you → ${to}: ${text}`, "dm")));
    $("dmText").value = "";
  });
  $("joinRoom").addEventListener("submit", (e) => {
    e.preventDefault();
    void join($("roomName").value.trim());
    $("roomName").value = "";
  });
  $("leave").addEventListener("click", () => void leave(current));

  let moderator;
  $("moderator").addEventListener("change", (e) => {
    if (e.target.checked) {
      // A second client in the page: with tab sharing it rides the same stream, with its own filter.
      moderator = new FanoutClient({ url: relay, token, getToken: () => refresh(user), patterns: ["chat:*"], shareTabs: { group: `${relay}:${user}` } });
      moderator.on("*", (m) => $("modLog").prepend(li(`${time(m.ts)} ${m.channel} ${m.type ?? ""} ${m.data.from ?? m.data.member?.sub ?? ""}: ${m.data.text ?? m.data.action ?? ""}`)));
      window.moderator = moderator;
    } else {
      moderator?.close();
      $("modLog").replaceChildren();
    }
  });

  void join("general");
}
