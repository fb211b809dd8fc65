/**
 * The buffer behind `for await (const m of client)`: messages wait here until the loop asks
 * for them. `full` tells the client to stop reading the network (it reads again once the
 * loop has taken messages), so a slow loop holds the stream back instead of growing without
 * bound; the relay's slow-consumer limits then apply as to any slow reader, and a stream it
 * ends resumes from the last message queued here, losing nothing.
 *
 * `end()` lets the loop finish what is queued, then ends it (or throws the error it was given).
 */
export class MessageQueue<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private taker?: { resolve: (r: IteratorResult<T>) => void; reject: (err: unknown) => void };
  private spaceWaiters: Array<() => void> = [];
  private ended = false;
  private error?: unknown;

  constructor(
    private readonly limit: number,
    /** Called once when the loop stops early (`break`, `return`, a throw inside the loop). */
    private readonly detach: () => void,
  ) {}

  get full(): boolean {
    return !this.ended && this.items.length >= this.limit;
  }

  push(item: T): void {
    if (this.ended) return;
    const t = this.taker;
    if (t) {
      this.taker = undefined;
      t.resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  /** Resolves once the queue has room again (or has ended). */
  space(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.spaceWaiters.push(resolve));
  }

  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.wakeSpace();
    const t = this.taker;
    if (t && this.items.length === 0) {
      this.taker = undefined;
      this.finish(t);
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) {
      const value = this.items.shift()!;
      if (this.items.length < this.limit) this.wakeSpace();
      return Promise.resolve({ value, done: false });
    }
    return new Promise((resolve, reject) => {
      const t = { resolve, reject };
      if (this.ended) this.finish(t);
      else this.taker = t;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.detach();
    this.end();
    this.items.length = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  /** The error is thrown once; after it the iterator is simply done. */
  private finish(t: { resolve: (r: IteratorResult<T>) => void; reject: (err: unknown) => void }): void {
    const err = this.error;
    this.error = undefined;
    if (err !== undefined) t.reject(err);
    else t.resolve({ value: undefined, done: true });
  }

  private wakeSpace(): void {
    const w = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const f of w) f();
  }
}
