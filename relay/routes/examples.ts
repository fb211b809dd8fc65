import { readFileSync, readdirSync } from "node:fs";
import { Hono, type Context } from "hono";
import { SignJWT } from "jose";
import { FanoutError } from "../../protocol/errors.js";
import { readJson } from "../../routes/read-body.js";
import { isLocalRequest } from "../auth/credentials.js";
import type { RelayConfig } from "../config.js";

const WEB = new URL("../../examples/web/", import.meta.url);
const TYPES: Record<string, string> = { html: "text/html; charset=utf-8", js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8" };

/** The pages show names and texts users typed: as text only, and no script but their own files. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** What the dev login grants: the example apps' channels, as a real backend would per user. */
function grants(user: string) {
  return {
    subscribe: ["chat:*", `user:${user}:*`, "invalidate:*"],
    publish: ["chat:*", "user:*:dm", "user:*:notifications", "invalidate:*"],
  };
}

const USER = /^[A-Za-z0-9_-]{1,32}$/;
const LOGIN_TTL_SECONDS = 3600;

/** The SDK for the pages, bundled once on first request (esbuild, which tsx brings along). */
let bundle: Promise<string> | undefined;
function sdkBundle(): Promise<string> {
  bundle ??= (async () => {
    const { build } = await import("esbuild");
    const out = await build({
      entryPoints: [new URL("../../client/index.ts", import.meta.url).pathname],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
      legalComments: "none",
    });
    return out.outputFiles[0].text;
  })();
  bundle.catch(() => (bundle = undefined));
  return bundle;
}

/** The pages' files; none in a tree without examples/web (an image built without it still starts). */
function readPages(): Map<string, { body: string; type: string }> {
  const files = new Map<string, { body: string; type: string }>();
  let names: string[];
  try {
    names = readdirSync(WEB);
  } catch {
    return files;
  }
  for (const name of names) {
    const type = TYPES[name.split(".").pop() ?? ""];
    if (type) files.set(name, { body: readFileSync(new URL(name, WEB), "utf8"), type });
  }
  return files;
}

/**
 * `/examples/…`: the seed's apps as web pages (chat, notifications, cache invalidation) and
 * the SDK bundled for them, served as files with no build step; `GET /examples/catalog.json`,
 * the cache page's data source; and, with `FANOUT_EXAMPLES_LOGIN=on`, `POST /examples/login`,
 * a development login that mints a user's JWT.
 */
export function examplesRoute(config: RelayConfig): Hono {
  const app = new Hono();
  const files = readPages();
  const headers = (type: string) => ({ "Content-Type": type, "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache" });
  const serve = (name: string) => (c: Context) => {
    const f = files.get(name);
    if (!f) throw new FanoutError(404, "not_found", `no example file ${JSON.stringify(name.slice(0, 80))}`);
    return c.body(f.body, 200, headers(f.type));
  };
  app.get("/examples", (c) => c.redirect("/examples/", 302));
  app.get("/examples/", serve("index.html"));
  app.get("/examples/fanout-client.js", async (c) => c.body(await sdkBundle(), 200, headers(TYPES.js)));
  let served = 0;
  app.get("/examples/catalog.json", (c) =>
    c.json(
      {
        servedAt: Date.now(),
        version: ++served,
        products: [
          { key: "product:1", name: "Lamp", price: 40 + (served % 7) },
          { key: "product:2", name: "Desk", price: 210 + (served % 5) },
        ],
      },
      200,
      { "Cache-Control": "no-store" },
    ),
  );
  app.post("/examples/login", async (c) => {
    if (!config.examplesLogin || !config.jwtSecret) {
      throw new FanoutError(404, "examples_login_off", "the example login is off: start the relay with FANOUT_EXAMPLES_LOGIN=on and FANOUT_JWT_SECRET (or `npm run examples`)");
    }
    if (!isLocalRequest(c, config.trustedProxies)) throw new FanoutError(403, "examples_login_remote", "the example login answers loopback clients only");
    const body = (await readJson(c, 1024)) as { user?: unknown } | null;
    const user = body && typeof body === "object" ? body.user : undefined;
    if (typeof user !== "string" || !USER.test(user)) throw new FanoutError(400, "invalid_body", "user must be 1 to 32 characters of A-Z a-z 0-9 _ -");
    const jwt = new SignJWT({ fanout: grants(user), info: { name: user } })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(user)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + LOGIN_TTL_SECONDS);
    if (config.jwtIssuer) jwt.setIssuer(config.jwtIssuer);
    if (config.jwtAudience) jwt.setAudience(config.jwtAudience);
    const token = await jwt.sign(new TextEncoder().encode(config.jwtSecret));
    return c.json({ user, token, expiresIn: LOGIN_TTL_SECONDS, grants: grants(user) });
  });
  app.get("/examples/:file", (c) => serve(c.req.param("file"))(c));
  return app;
}
