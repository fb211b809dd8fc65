/** What a command reads and writes besides the network (tests of pure behaviour pass their own). */
export interface Io {
  env: NodeJS.ProcessEnv;
  out(line: string): void;
  err(line: string): void;
}

export const processIo: Io = {
  env: process.env,
  out: (line) => void process.stdout.write(line + "\n"),
  err: (line) => void process.stderr.write(line + "\n"),
};

/** Exit codes shared by every command. */
export const EXIT = { ok: 0, refused: 1, usage: 2 } as const;

/**
 * `edge-fanout tail … | head -3`: once the reader has gone, writing raises EPIPE, which
 * would end the process with a stack trace. A closed stdout ends the command quietly instead.
 */
export function exitQuietlyOnClosedStdout(): void {
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(EXIT.ok);
    throw err;
  });
}
