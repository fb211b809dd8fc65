import type { Hono } from "hono";
import { createApp } from "./app.js";
import { ConfigError, loadConfig, type FunctionsEnv } from "./config.js";

const apps = new WeakMap<object, Hono>();

/**
 * The Workers entry. Settings are read once per `env` object (Workers hand the same one to
 * every request of an isolate); a bad setting answers every request with what to fix.
 */
const worker = {
  async fetch(request: Request, env: FunctionsEnv): Promise<Response> {
    let app = apps.get(env);
    if (!app) {
      try {
        app = createApp(loadConfig(env));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        console.error(`[fanout] configuration: ${err.message}`);
        return Response.json({ error: { code: "misconfigured", message: err.message } }, { status: 500 });
      }
      apps.set(env, app);
    }
    return app.fetch(request, env);
  },
};

export default worker;
