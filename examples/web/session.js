// The example pages' login: POST /examples/login mints a JWT for a user name (a development
// stand-in for your backend's sign-in, which would mint the token for the signed-in user).
// The token is kept per tab (sessionStorage), so two tabs may be two users.
export const relay = location.origin;

export function currentUser() {
  const raw = sessionStorage.getItem("fanout-example-session");
  return raw ? JSON.parse(raw) : undefined;
}

export async function login(user) {
  const res = await fetch(`${relay}/examples/login`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user }) });
  const body = await res.json();
  if (!res.ok) throw new Error(`${res.status} ${body.error?.code}: ${body.error?.message}`);
  sessionStorage.setItem("fanout-example-session", JSON.stringify(body));
  return body;
}

/**
 * A fresh token when the stream's expires (the client's `getToken`). Each tab signs in on its
 * own, so tokens differ between tabs: the pages name their tab-sharing group after the user.
 */
export async function refresh(user) {
  return (await login(user)).token;
}

export function logout() {
  sessionStorage.removeItem("fanout-example-session");
}

/** Shows the client's connection status in `el` (class and text). */
export function showStatus(client, el) {
  const set = (s) => {
    el.className = `status ${s}`;
    el.textContent = s + (client.tabRole ? ` · ${client.tabRole}` : "");
  };
  set(client.status);
  client.onStatus(set);
  client.onReady(() => set(client.status));
}

export function li(text, cls) {
  const el = document.createElement("li");
  el.textContent = text;
  if (cls) el.className = cls;
  return el;
}

export function time(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/**
 * The pages' sign-in: with a session, shows the app (`#app`, the user and a sign-out link in
 * `#who`) and calls `start(session)`; without one, shows the form (`#signin`) and reloads
 * once signed in.
 */
export function signedIn(start) {
  const $ = (id) => document.getElementById(id);
  const me = currentUser();
  if (!me) {
    $("signin").hidden = false;
    $("status").textContent = "signed out";
    $("login").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await login($("name").value.trim());
        location.reload();
      } catch (err) {
        $("loginError").textContent = err.message;
      }
    });
    return;
  }
  $("app").hidden = false;
  $("who").textContent = `signed in as ${me.user} · `;
  const out = document.createElement("a");
  out.href = "#";
  out.textContent = "sign out";
  out.onclick = () => (logout(), location.reload());
  $("who").append(out);
  start(me);
}
