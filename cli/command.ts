import type { Io } from "./io.js";

/** One subcommand: `run` gets the arguments after its name and resolves to the exit code. */
export interface Command {
  name: string;
  summary: string;
  /** Full `--help` text. */
  help: string;
  run(argv: string[], io: Io): Promise<number>;
}
