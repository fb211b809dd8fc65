import { defineConfig } from "vitest/config";

// One `vitest run` runs every project: Node-side tests here, the Workers-runtime tests in
// functions/ (its own config, in the Workers pool).
export default defineConfig({
  test: {
    projects: ["./vitest.node.config.ts", "./functions/vitest.config.ts"],
  },
});
