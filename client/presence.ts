import { FanoutClientError, errorFromResponse, readJsonAnswer } from "./errors.js";

/** One member of a presence channel: a user (`sub` of their token) and their `info` claim. */
export interface PresenceMember {
  sub: string;
  info?: Record<string, unknown>;
  /** Open streams of this user on the channel, across relays. */
  connections: number;
}

/** `GET /v1/presence/<channel>`: identified members, plus anonymous streams as a count. */
export interface PresenceList {
  channel: string;
  members: PresenceMember[];
  anonymous: number;
}

/** `GET /v1/presence/<channel>?stats=1`: counts only, for large channels. */
export interface PresenceStats {
  channel: string;
  connections: number;
  users: number;
  anonymous: number;
}

export interface PresenceOptions {
  stats?: boolean;
}

/** GET the presence route of the relay `streamUrl` (any `/v1/events` URL of it) points at. */
export async function fetchPresence(
  streamUrl: URL,
  channel: string,
  opts: PresenceOptions,
  headers: Record<string, string>,
  doFetch: typeof fetch,
  credentials?: RequestCredentials,
): Promise<PresenceList | PresenceStats> {
  const url = new URL(streamUrl);
  url.pathname = url.pathname.replace(/v1\/events$/, `v1/presence/${encodeURIComponent(channel)}`);
  url.search = opts.stats ? "?stats=1" : "";
  let res: Response;
  try {
    res = await doFetch(url, { headers, credentials });
  } catch (err) {
    throw new FanoutClientError("network_error", `GET ${url.pathname} failed: ${(err as Error).message}`, { cause: err });
  }
  if (!res.ok) throw await errorFromResponse(res);
  return readJsonAnswer<PresenceList | PresenceStats>(res, `GET ${url.pathname}`);
}
