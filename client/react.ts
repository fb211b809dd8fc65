// React is an optional peer dependency, imported by this subpath only
// (`@edge-fanout/client/react`): the core never loads it. This module is typed on its own,
// so the package builds and typechecks without @types/react.
// @ts-ignore -- no types for "react" needed here; see above.
import { useEffect, useMemo, useRef, useSyncExternalStore } from "react";
import { ChannelStore, type ChannelSnapshot, type ChannelStoreOptions } from "./channel-store.js";

export type { ChannelSnapshot } from "./channel-store.js";

export interface UseChannelOptions<T = unknown> extends Omit<ChannelStoreOptions<T>, "channels"> {
  /** More channels besides the first argument. */
  channels?: string[];
}

/** Options that may be functions: the hook always calls the latest render's, so inline closures do not reconnect. */
const LIVE = ["url", "token", "getToken", "getTicket", "headers", "fetch", "onMessage"] as const;

/**
 * Follows one or more channels while the component is mounted:
 *
 *     const { messages, last, status } = useChannel<Order>("orders", { url: RELAY, type: "order.created" });
 *
 * One stream per hook; it opens after mount (never during server rendering) and closes on
 * unmount. A change of the channels, patterns, `type`, `keep`, a string `url` or `token`, a
 * `headers` object (by value) or `credentials` opens a new stream; function options
 * (`getTicket`, `headers` as a function, `onMessage`, …) may change freely.
 * Returns the latest `keep` (default 100) messages, the connection status and the last error.
 */
export function useChannel<T = unknown>(channel: string | string[], options: UseChannelOptions<T>): ChannelSnapshot<T> {
  const channels = [...(typeof channel === "string" ? [channel] : channel), ...(options.channels ?? [])];
  const latest = useRef(options) as { current: UseChannelOptions<T> };
  useEffect(() => {
    latest.current = options;
  });
  const key = JSON.stringify([
    channels,
    options.patterns ?? [],
    options.type ?? null,
    options.keep ?? null,
    typeof options.url === "function" ? null : String(options.url),
    typeof options.token === "function" ? null : (options.token ?? null),
    // Header objects are compared by value: a new Authorization opens a stream that sends it.
    typeof options.headers === "function" ? null : (options.headers ?? null),
    options.credentials ?? null,
    options.lastEventId ?? null,
  ]);
  const store = useMemo(() => {
    const opts: Record<string, unknown> = { ...options, channels };
    for (const k of LIVE) {
      if (typeof options[k] !== "function") continue;
      opts[k] = (...args: unknown[]) => {
        const f = latest.current[k] as ((...a: unknown[]) => unknown) | undefined;
        return typeof f === "function" ? f(...args) : undefined;
      };
    }
    return new ChannelStore<T>(opts as unknown as ChannelStoreOptions<T>);
  }, [key]) as ChannelStore<T>;
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot) as ChannelSnapshot<T>;
}
