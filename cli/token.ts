import { MAX_GRANT_GLOBS } from "../protocol/auth/grants.js";
import { signFanoutToken } from "../protocol/auth/sign-token.js";
import { fromEnv, parseCommandLine } from "./args.js";
import type { Command } from "./command.js";
import { parseDuration } from "./duration.js";
import { EXIT } from "./io.js";
import { UsageError } from "./usage-error.js";
import { MAX_INFO_BYTES } from "../protocol/auth/jwt-verifier.js";

const help = `Usage: edge-fanout token --subscribe GLOB... --publish GLOB... [options]

Mints an HS256 JWT for a relay's FANOUT_JWT_SECRET, with the claim
{ "fanout": { "subscribe": [...], "publish": [...], "admin"?: true } }, and prints it.
For development and tests: production tokens come from your backend (signFanoutToken).

Options:
  --secret S          HMAC secret (default $FANOUT_JWT_SECRET; prefer the environment:
                      arguments are visible to other users in the process list)
  --subscribe GLOB    channels it may subscribe to, Redis glob syntax (repeatable)
  --publish GLOB      channels it may publish on (repeatable)
  --admin             may read /v1/stats with channel names
  --sub SUBJECT       the sub claim (who the user is on presence channels)
  --info JSON         the info claim: a JSON object presence shows with the sub, at most 1 KiB
  --ttl DURATION      lifetime, e.g. 90s, 15m, 1h, 7d (default 1h; exp is always set)
  --iss ISSUER        iss claim (default $FANOUT_JWT_ISSUER; needed when the relay sets it)
  --aud AUDIENCE      aud claim (default $FANOUT_JWT_AUDIENCE; needed when the relay sets it)
  -h, --help

Example: edge-fanout token --subscribe 'user:42:*' --publish 'chat:*' --ttl 15m`;

export const tokenCommand: Command = {
  name: "token",
  summary: "mint a development JWT with subscribe/publish globs",
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, {
      secret: { type: "string" },
      subscribe: { type: "string", multiple: true },
      publish: { type: "string", multiple: true },
      admin: { type: "boolean" },
      sub: { type: "string" },
      info: { type: "string" },
      ttl: { type: "string" },
      iss: { type: "string" },
      aud: { type: "string" },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (globs go after --subscribe or --publish)`);
    const secret = fromEnv(values.secret, io.env, "FANOUT_JWT_SECRET");
    if (!secret) throw new UsageError("no secret: pass --secret or set FANOUT_JWT_SECRET");
    const subscribe = values.subscribe ?? [];
    const publish = values.publish ?? [];
    if (subscribe.length + publish.length === 0 && !values.admin) throw new UsageError("the token would grant nothing: give --subscribe, --publish or --admin");
    for (const [flag, globs] of [["--subscribe", subscribe], ["--publish", publish]] as const) {
      if (globs.length > MAX_GRANT_GLOBS) throw new UsageError(`at most ${MAX_GRANT_GLOBS} ${flag} globs (the relay refuses larger claims)`);
      if (globs.some((g) => g.length === 0)) throw new UsageError(`${flag} needs a non-empty glob`);
    }
    const expiresIn = parseDuration("--ttl", values.ttl ?? "1h");
    const info = values.info === undefined ? undefined : parseInfo(values.info);
    const token = await signFanoutToken(secret, { subscribe, publish, admin: values.admin ?? false }, {
      expiresIn,
      subject: values.sub,
      info,
      issuer: fromEnv(values.iss, io.env, "FANOUT_JWT_ISSUER"),
      audience: fromEnv(values.aud, io.env, "FANOUT_JWT_AUDIENCE"),
    });
    io.out(token);
    return EXIT.ok;
  },
};

/** The relay ignores an info claim that is not an object or is larger: refuse it here instead. */
function parseInfo(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new UsageError("--info must be a JSON object, e.g. '{\"name\":\"Ann\"}'");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new UsageError("--info must be a JSON object, e.g. '{\"name\":\"Ann\"}'");
  if (new TextEncoder().encode(JSON.stringify(v)).byteLength > MAX_INFO_BYTES) throw new UsageError(`--info must be at most ${MAX_INFO_BYTES} bytes as JSON`);
  return v as Record<string, unknown>;
}
