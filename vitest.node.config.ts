import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "node",
    include: ["protocol/**/*.test.ts", "routes/**/*.test.ts", "relay/**/*.test.ts", "test/**/*.test.ts", "client/**/*.test.ts", "cli/**/*.test.ts", "deploy/**/*.test.ts", "examples/**/*.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
