import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// The edge functions' tests, run inside workerd (compatibility settings from
// ../wrangler.toml) against a real redis-server behind an Upstash-REST server, both started
// by ./global-setup.ts and reached over loopback.
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
    globalSetup: ["./global-setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
