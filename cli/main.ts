import { HelpRequested } from "./args.js";
import type { Command } from "./command.js";
import { EXIT, exitQuietlyOnClosedStdout, processIo, type Io } from "./io.js";
import { publishCommand } from "./publish.js";
import { serveCommand } from "./serve.js";
import { statsCommand } from "./stats.js";
import { tailCommand } from "./tail.js";
import { tokenCommand } from "./token.js";
import { UsageError } from "./usage-error.js";

const COMMANDS: Command[] = [serveCommand, publishCommand, tailCommand, statsCommand, tokenCommand];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "Usage: edge-fanout <command> [options]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "edge-fanout <command> --help shows a command's options.",
    "Defaults from the environment: FANOUT_URL (relay URL), FANOUT_PUBLISH_KEY, FANOUT_TOKEN, FANOUT_JWT_SECRET.",
  ].join("\n");
}

/** Runs one command line; resolves to the process exit code (0 ok, 1 refused, 2 usage). */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  if (io === processIo) exitQuietlyOnClosedStdout();
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? io.err : io.out)(overview());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`edge-fanout: unknown command ${JSON.stringify(name)} (commands: ${COMMANDS.map((c) => c.name).join(", ")}; see edge-fanout --help)`);
    return EXIT.usage;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof HelpRequested) {
      io.out(command.help);
      return EXIT.ok;
    }
    if (!(err instanceof UsageError)) throw err;
    io.err(`edge-fanout ${name}: ${err.message} (see edge-fanout ${name} --help)`);
    return EXIT.usage;
  }
}
