import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// The edge functions' tests, run inside workerd (compatibility settings from
// ../wrangler.toml) against a real redis-server behind an Upstash-REST server, both started
// by ./test/global-setup.ts and reached over loopback. Test support for this runtime lives
// in ./test/, apart from the shipped worker code.
// The placeholder `request.cf`, never Cloudflare's metadata fetched over the network: the
// tests run offline. (The pool takes only per-worker options from here, and `cf` is a shared
// one; miniflare reads this variable instead. Without it the pool relies on NODE_ENV=test.)
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";

export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: "../wrangler.toml" },
      miniflare: {
        bindings: {
          UPSTASH_REDIS_REST_URL: inject("restUrl"),
          UPSTASH_REDIS_REST_TOKEN: inject("restToken"),
        },
      },
    })),
  ],
  test: {
    name: "functions",
    root: import.meta.dirname,
    include: ["**/*.test.ts"],
    globalSetup: ["./test/global-setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
