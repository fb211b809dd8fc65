// The Workers entry (wrangler.toml `main`). Library pieces are imported from their own
// modules: ./app.js, ./upstash-publisher.js, ./cache-entry.js, ../routes/*.
export { default } from "./worker.js";
