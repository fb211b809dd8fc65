import type { Envelope } from "./envelope.js";
import type { FanoutClientError } from "./errors.js";
import { FanoutClient, type ConnectionStatus, type FanoutClientOptions } from "./fanout-client.js";

export interface ChannelStoreOptions<T = unknown> extends FanoutClientOptions {
  /** Only messages of this type (the publish `type`; `"message"` for untyped ones). Default: every message. */
  type?: string;
  /** How many of the latest messages `messages` keeps. Default 100. */
  keep?: number;
  /** Called for each message, before subscribers see the new snapshot. */
  onMessage?: (message: Envelope<T>) => void;
}

/** What a store (and `useChannel`) shows: immutable, a new object on every change. */
export interface ChannelSnapshot<T = unknown> {
  /** The latest messages, oldest first, at most `keep`. */
  messages: readonly Envelope<T>[];
  last: Envelope<T> | undefined;
  status: ConnectionStatus;
  /** The last error reported; when `status` is `closed`, the refusal that stopped the client. */
  error: FanoutClientError | undefined;
  /** Bumped on every `event: reset` (the relay could not resume; refetch what you show). */
  resets: number;
}

/**
 * A FanoutClient as an external store (`subscribe` / `getSnapshot`), for UI frameworks:
 * React's `useSyncExternalStore` (client/react.ts) or anything else. The stream is opened
 * by the first subscriber and closed shortly after the last one leaves; the delay lets a
 * framework that unsubscribes and resubscribes at once (React's StrictMode, a re-render)
 * keep the same stream. Nothing connects before a subscriber arrives, so rendering on a
 * server opens nothing.
 */
export class ChannelStore<T = unknown> {
  private snapshot: ChannelSnapshot<T> = { messages: [], last: undefined, status: "connecting", error: undefined, resets: 0 };
  private readonly listeners = new Set<() => void>();
  private client?: FanoutClient;
  private closeTimer?: ReturnType<typeof setTimeout>;

  constructor(private readonly opts: ChannelStoreOptions<T>) {}

  /** Arrow functions: React passes them around unbound. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    if (this.closeTimer !== undefined) {
      clearTimeout(this.closeTimer);
      this.closeTimer = undefined;
    }
    if (!this.client) this.open();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.closeTimer === undefined) {
        this.closeTimer = setTimeout(() => {
          this.closeTimer = undefined;
          if (this.listeners.size === 0) this.shut();
        }, 0);
      }
    };
  };

  readonly getSnapshot = (): ChannelSnapshot<T> => this.snapshot;

  private open(): void {
    const { type, keep = 100, onMessage, ...clientOpts } = this.opts;
    const client = new FanoutClient(clientOpts);
    this.client = client;
    client.on<T>(type ?? "*", (m) => {
      onMessage?.(m);
      const prev = this.snapshot.messages;
      const messages = keep > 0 ? [...prev.slice(Math.max(0, prev.length - keep + 1)), m] : [];
      this.set({ messages, last: m });
    });
    client.onStatus((status) => this.set({ status }));
    client.onError((error) => this.set({ error }));
    client.onReset(() => this.set({ resets: this.snapshot.resets + 1 }));
  }

  private shut(): void {
    this.client?.close();
    this.client = undefined;
  }

  private set(change: Partial<ChannelSnapshot<T>>): void {
    this.snapshot = { ...this.snapshot, ...change };
    for (const l of [...this.listeners]) l();
  }
}
