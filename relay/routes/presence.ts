import { Hono } from "hono";
import { FanoutError, unavailable } from "../../protocol/errors.js";
import { checkChannel } from "../../protocol/names.js";
import { checkSubscribable } from "../../protocol/reserved-channels.js";
import type { RelayContext } from "../relay-context.js";

/** Streams read for one presence list: a larger channel is for `?stats=1`. */
export const PRESENCE_LIST_MAX = 1000;

/**
 * `GET /v1/presence/<channel>`: who is subscribed to a presence channel, across the relays of
 * the deployment — members by token `sub` with their `info` and stream count, plus anonymous
 * streams as a count; `?stats=1` answers counts only. Authorized exactly like subscribing to
 * the channel (same credential rules as `GET /v1/events`).
 */
export function presenceRoute(rc: RelayContext): Hono {
  const app = new Hono();
  app.get("/v1/presence/:channel", async (c) => {
    // Decoded here, not by Hono: it keeps a segment it cannot decode as its raw text, so
    // `%ED%A0%80` (a lone surrogate) would name the literal channel "%ED%A0%80".
    const raw = c.req.path.slice(c.req.path.lastIndexOf("/") + 1);
    let channel: string;
    try {
      channel = decodeURIComponent(raw);
    } catch {
      throw new FanoutError(400, "invalid_encoding", "the channel is not percent-encoded UTF-8 (send `/` as %2F)");
    }
    checkChannel(channel, "channel");
    checkSubscribable([channel], [], rc.config.log.prefix);
    if (!rc.presence.tracks(channel)) {
      throw new FanoutError(404, "presence_not_enabled", "this channel has no presence (it matches none of FANOUT_PRESENCE_CHANNELS)");
    }
    await rc.auth.authorizeSubscribe(c, [channel], []);
    const stats = c.req.query("stats");
    try {
      // Members of relays that died are swept before they are counted.
      await rc.presence.sweep(channel);
      if (stats !== undefined && stats !== "0" && stats !== "false") return c.json({ channel, ...(await rc.presence.stats(channel)) });
      return c.json({ channel, ...(await rc.presence.list(channel, PRESENCE_LIST_MAX)) });
    } catch (err) {
      if (err instanceof FanoutError) throw err;
      throw unavailable("presence is unreachable (Redis); retry shortly", 2);
    }
  });
  return app;
}
