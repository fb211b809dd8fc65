/**
 * `npm run examples`: the relay as `npm start` runs it, set up for the example pages at
 * http://localhost:8080/examples/ — a development login that mints JWTs (FANOUT_EXAMPLES_LOGIN,
 * signed with a FANOUT_JWT_SECRET made up at each start unless you set one), presence on the
 * chat rooms, the invalidation channel open to anonymous pages, and a generic deploy hook
 * secret. Any of these variables you set yourself wins. Development only: anyone who can
 * reach the login can sign in as anyone.
 */
import { createHmac, randomBytes } from "node:crypto";

const env = process.env;
env.FANOUT_JWT_SECRET ??= randomBytes(24).toString("base64url");
env.FANOUT_EXAMPLES_LOGIN ??= "on";
env.FANOUT_PRESENCE_CHANNELS ??= "chat:*";
env.FANOUT_PUBLIC_CHANNELS ??= "invalidate:*";
env.FANOUT_HOOK_SECRET ??= "dev-hook-secret";

await import("../relay/main.js");

const port = env.PORT ?? "8080";
const body = JSON.stringify({ keys: ["product:1"], deployId: `demo-${Date.now().toString(36)}` });
const signature = createHmac("sha256", env.FANOUT_HOOK_SECRET).update(body).digest("hex");
console.log(`[examples] open http://localhost:${port}/examples/ (chat, notifications, cache invalidation)`);
console.log(`[examples] fire a deploy hook:\n  curl -X POST http://localhost:${port}/v1/hooks/generic -H 'X-Fanout-Signature: sha256=${signature}' -d '${body}'`);
