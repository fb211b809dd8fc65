import { readFileSync } from "node:fs";
import { Hono } from "hono";

const PAGE = readFileSync(new URL("../public/index.html", import.meta.url), "utf8");

/** `/`: the page a newcomer sees after `npm start`: subscribe, publish, watch messages arrive. */
export function pageRoute(): Hono {
  const app = new Hono();
  app.get("/", (c) => c.html(PAGE));
  return app;
}
