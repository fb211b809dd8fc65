import { publish } from "../client/publish.js";
import { fromEnv, parseCommandLine, relayUrl } from "./args.js";
import type { Command } from "./command.js";
import { EXIT } from "./io.js";
import { escapeJson } from "./printable.js";
import { describeFailure } from "./refusal.js";
import { UsageError } from "./usage-error.js";

const help = `Usage: edge-fanout publish <channel> <data> [options]

Publishes one message (POST /v1/publish) and prints the relay's answer as JSON.
<data> is parsed as JSON when it is JSON ({"a":1}, 42, true, "quoted"), else sent as a string.
Data starting with "-" goes after "--": edge-fanout publish ch -- -5

Options:
  --type T      message type (the SSE event name)
  --id ID       idempotency id: the same id on the same channel publishes once
  --meta K=V    envelope metadata, repeatable (--meta source=cli --meta correlation_id=c-77)
  --string      send <data> as a string even when it is JSON
  --url URL     relay base URL (default $FANOUT_URL, else http://localhost:8080)
  --key KEY     publisher key or JWT (default $FANOUT_PUBLISH_KEY)
  -h, --help

Exit codes: 0 published, 1 refused or unreachable (the error code is printed), 2 usage error.`;

export const publishCommand: Command = {
  name: "publish",
  summary: "publish one message to a channel",
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, {
      type: { type: "string" },
      id: { type: "string" },
      meta: { type: "string", multiple: true },
      string: { type: "boolean" },
      url: { type: "string" },
      key: { type: "string" },
    });
    if (positionals.length !== 2) throw new UsageError(`expected <channel> <data>, got ${positionals.length} argument${positionals.length === 1 ? "" : "s"}`);
    const [channel, raw] = positionals;
    const url = relayUrl(values.url, io.env);
    const data = values.string ? raw : parseData(raw);
    const meta = parseMeta(values.meta);
    try {
      const result = await publish(url, { channel, data, type: values.type, id: values.id, meta }, { key: fromEnv(values.key, io.env, "FANOUT_PUBLISH_KEY") });
      io.out(escapeJson(JSON.stringify(result)));
      return EXIT.ok;
    } catch (err) {
      io.err(describeFailure(err));
      return EXIT.refused;
    }
  },
};

/** `--meta key=value` flags as the envelope's meta (undefined without any); the relay checks keys and values. */
export function parseMeta(flags: string[] | undefined): Record<string, string> | undefined {
  if (!flags?.length) return undefined;
  // fromEntries, not assignment: `--meta __proto__=x` must reach the relay (which refuses the
  // key) rather than vanish into the object's prototype and publish without its meta.
  return Object.fromEntries(
    flags.map((f) => {
      const eq = f.indexOf("=");
      if (eq <= 0) throw new UsageError(`--meta takes key=value, got ${JSON.stringify(f)}`);
      return [f.slice(0, eq), f.slice(eq + 1)];
    }),
  );
}

/** JSON when it parses, the text itself otherwise (as `redis-cli` takes its arguments). */
export function parseData(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
