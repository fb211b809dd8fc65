import { FanoutClient } from "../client/fanout-client.js";
import { fromEnv, parseCommandLine, relayUrl } from "./args.js";
import type { Command } from "./command.js";
import { EXIT } from "./io.js";
import { printable } from "./printable.js";
import { describeFailure } from "./refusal.js";
import { splitSubscriptions } from "./subscriptions.js";
import { tailJson, tailLine } from "./tail-line.js";

const help = `Usage: edge-fanout tail <channel|pattern>... [options]

Streams messages (GET /v1/events) and prints one line each: time channel (pattern) type data.
Arguments holding a glob metacharacter (* ? [) are patterns, the others channels, as with
redis-cli psubscribe. Reconnects by itself and resumes where it left off; Ctrl-C ends it and
prints the last id, to resume later with --last-event-id. Status goes to stderr.

Options:
  --channel C           subscribe to C as a channel even if it holds * ? [ (repeatable)
  --pattern P           subscribe to P as a pattern (repeatable)
  --last-event-id ID    resume: print every message after ID first, then live ones
  --url URL             relay base URL (default $FANOUT_URL, else http://localhost:8080)
  --token T             JWT or publisher key (default $FANOUT_TOKEN, else $FANOUT_PUBLISH_KEY)
  --json                print each message envelope as one JSON line
  -h, --help

Exit codes: 0 ended by Ctrl-C (or SIGTERM), 1 refused by the relay, 2 usage error.`;

export const tailCommand: Command = {
  name: "tail",
  summary: "print messages of channels and patterns as they arrive (resumable)",
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, {
      channel: { type: "string", multiple: true },
      pattern: { type: "string", multiple: true },
      "last-event-id": { type: "string" },
      url: { type: "string" },
      token: { type: "string" },
      json: { type: "boolean" },
    });
    const subs = splitSubscriptions(positionals, values.channel, values.pattern);
    const url = relayUrl(values.url, io.env);
    const client = new FanoutClient({
      url,
      ...subs,
      token: fromEnv(values.token, io.env, "FANOUT_TOKEN", "FANOUT_PUBLISH_KEY"),
      lastEventId: values["last-event-id"],
    });
    const format = values.json ? tailJson : tailLine;
    client.on("*", (e) => io.out(format(e)));
    client.onReady((info) => io.err(`tail: connected to ${url.origin} (connection ${printable(info.connection)})`));
    client.onReset((reason) => io.err(`tail: the relay could not resume from the last id (${printable(reason)}): messages may have been missed`));
    client.onStatus((s) => {
      if (s === "reconnecting") io.err("tail: disconnected, reconnecting…");
    });

    let code: number = EXIT.ok;
    client.onError((err) => {
      io.err(describeFailure(err));
      // The SDK reports only refusals with an HTTP status (and then stops); status-less
      // reports (an event that is not an envelope) leave the stream running.
      if (err.status !== 0) code = EXIT.refused;
    });
    await untilClosedOrSignalled(client);

    const last = client.lastEventId;
    io.err(last ? `tail: last id ${last} (resume with --last-event-id ${last})` : "tail: no event received, nothing to resume from");
    return code;
  },
};

/** Resolves once the client has stopped for good, or SIGINT/SIGTERM has stopped it. */
function untilClosedOrSignalled(client: FanoutClient): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => client.close();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    const off = client.onStatus((s) => {
      if (s !== "closed") return;
      off();
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    });
  });
}
