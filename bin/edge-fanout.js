#!/usr/bin/env node
// The package runs its TypeScript from source (no build step): register tsx's loader for
// this process, then hand over to the CLI. `npx edge-fanout` and `npm exec edge-fanout` land here.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
