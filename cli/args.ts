import { parseArgs, type ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;
import { UsageError } from "./usage-error.js";

const HELP = { help: { type: "boolean", short: "h" } } as const;

/** Thrown by parseCommandLine on `-h/--help`: main prints the command's help, exit 0. */
export class HelpRequested extends Error {}

/**
 * `node:util` parseArgs, strict, with positionals and `-h/--help` on every command (thrown as
 * HelpRequested); its errors become a UsageError of one sentence (its advice about `--`
 * follows a period).
 */
export function parseCommandLine<const O extends Options>(argv: string[], options: O) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, ...HELP }, allowPositionals: true, strict: true });
  } catch (err) {
    const message = (err as Error).message;
    throw new UsageError(message.match(/^.*?(?=\.(\s|$))/)?.[0] ?? message);
  }
  if ((parsed.values as { help?: boolean }).help) throw new HelpRequested();
  return parsed;
}

/** `--url`, else `$FANOUT_URL`, else the relay `npm start` runs. */
export function relayUrl(flag: string | undefined, env: NodeJS.ProcessEnv): URL {
  const value = flag ?? env.FANOUT_URL ?? "http://localhost:8080";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--url (or FANOUT_URL) must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--url (or FANOUT_URL) must be http:// or https://, got ${JSON.stringify(value)}`);
  return url;
}

/** A flag's value when given, else the first of `names` set (non-empty) in the environment. */
export function fromEnv(flag: string | undefined, env: NodeJS.ProcessEnv, ...names: string[]): string | undefined {
  if (flag !== undefined) return flag;
  for (const n of names) if (env[n]) return env[n];
  return undefined;
}
