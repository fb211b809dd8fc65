import { parseCommandLine } from "./args.js";
import type { Command } from "./command.js";
import { EXIT } from "./io.js";
import { UsageError } from "./usage-error.js";

const help = `Usage: edge-fanout serve [options]

Runs the relay in this process, exactly as npm start does; every setting comes from the
environment (PORT, HOST, REDIS_URL, FANOUT_*: see docs/protocol.md). SIGTERM or Ctrl-C drains.

Options (shorthands for the environment variables):
  --port N        PORT (default 8080)
  --host H        HOST (default 0.0.0.0)
  --redis URL     REDIS_URL (default: unset, the embedded broker)
  -h, --help`;

export const serveCommand: Command = {
  name: "serve",
  summary: "run the relay (same as npm start)",
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, {
      port: { type: "string" },
      host: { type: "string" },
      redis: { type: "string" },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    // The relay reads only its environment (relay/config.ts validates it): flags are set there.
    if (values.port !== undefined) io.env.PORT = values.port;
    if (values.host !== undefined) io.env.HOST = values.host;
    if (values.redis !== undefined) io.env.REDIS_URL = values.redis;
    // relay/main.ts starts the relay and owns the process from here: its signal handlers
    // drain and exit; a configuration error exits with 2, as a usage error here does.
    await import("../relay/main.js");
    return EXIT.ok;
  },
};
