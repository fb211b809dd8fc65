import { errorFromResponse, FanoutClientError } from "../client/errors.js";
import { endpoint } from "../client/publish.js";
import { fromEnv, parseCommandLine, relayUrl } from "./args.js";
import type { Command } from "./command.js";
import { EXIT } from "./io.js";
import { escapeJson } from "./printable.js";
import { describeFailure } from "./refusal.js";
import { renderStats } from "./render-stats.js";
import { UsageError } from "./usage-error.js";

const help = `Usage: edge-fanout stats [options]

Prints a relay's GET /v1/stats as tables: connections, subscriptions, message counts and
rates, then its channels and patterns by subscriber count. With auth configured on the relay,
names are shown only with a credential (a publisher key or a JWT with fanout.admin).

Options:
  --fleet       the whole fleet (GET /v1/stats?scope=fleet): every relay sharing the Redis
  --top N       channels and patterns shown per table, largest first (default 20; 0: all)
  --json        print the relay's JSON as it is
  --url URL     relay base URL (default $FANOUT_URL, else http://localhost:8080)
  --key KEY     publisher key or admin JWT (default $FANOUT_PUBLISH_KEY)
  -h, --help

Exit codes: 0 ok, 1 refused or unreachable (or no fleet view with --fleet), 2 usage error.`;

export const statsCommand: Command = {
  name: "stats",
  summary: "show a relay's (or the fleet's) connections, channels and rates",
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, {
      fleet: { type: "boolean" },
      top: { type: "string" },
      json: { type: "boolean" },
      url: { type: "string" },
      key: { type: "string" },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const top = values.top === undefined ? 20 : Number(values.top);
    if (!Number.isInteger(top) || top < 0) throw new UsageError(`--top must be a whole number (0: all), got ${JSON.stringify(values.top)}`);
    const url = endpoint(relayUrl(values.url, io.env), "v1/stats");
    if (values.fleet) url.searchParams.set("scope", "fleet");
    const key = fromEnv(values.key, io.env, "FANOUT_PUBLISH_KEY");

    let body: Record<string, unknown>;
    try {
      body = await getJson(url, key);
    } catch (err) {
      if (values.fleet && err instanceof FanoutClientError && (err.status === 400 || err.status === 404)) {
        io.err(`error: this relay has no fleet view: GET ${url.pathname}?scope=fleet answered HTTP ${err.status} (${err.code}); it predates fleet stats or is not a relay. Run stats without --fleet for this relay alone.`);
      } else io.err(describeFailure(err));
      return EXIT.refused;
    }
    // A relay from before the fleet view ignores the unknown parameter and answers for
    // itself: printing that as "the fleet" would hide every other relay.
    if (values.fleet && !Array.isArray(body.relays)) {
      io.err("error: this relay has no fleet view: it ignored ?scope=fleet and answered with its own stats only (no relays list). Run stats without --fleet for this relay alone.");
      return EXIT.refused;
    }
    if (values.json) {
      io.out(escapeJson(JSON.stringify(body, null, 2)));
      return EXIT.ok;
    }
    for (const line of renderStats(body, top)) io.out(line);
    if (!values.fleet && body.channels === undefined) io.err("stats: channel and pattern names hidden: the relay shows them only with a credential (--key: a publisher key or a JWT with fanout.admin)");
    return EXIT.ok;
  },
};

async function getJson(url: URL, key: string | undefined): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(url, { headers: key ? { Authorization: `Bearer ${key}` } : {} });
  } catch (err) {
    throw new FanoutClientError("network_error", `GET ${url.pathname} failed: ${(err as Error).message}`, { cause: err });
  }
  if (!res.ok) throw await errorFromResponse(res);
  const body: unknown = await res.json().catch(() => undefined);
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new FanoutClientError("invalid_response", `GET ${url.pathname} did not answer a JSON object`, { status: res.status });
  return body as Record<string, unknown>;
}
