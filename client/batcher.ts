/**
 * Automatic batching: items added within a short linger window (or until a
 * batch is full) are handed to one flush call, so concurrent `send()` calls
 * cost one request instead of one each. Batches for different keys (topics)
 * fill independently. Batches run concurrently, except that a batch waits
 * for earlier batches holding any of its order keys (sharding keys), so that
 * a retried earlier batch can never be overtaken and order per sharding key
 * holds even across batches.
 */

/** How batches are formed. */
export interface BatchOptions {
  /**
   * How long the first item of a batch waits for company, in ms. Default 5.
   * 0 still coalesces everything added in the same turn of the event loop.
   */
  lingerMs?: number;
  /** Items per batch. Default 500 (the contract allows 1000 per request). */
  maxMessages?: number;
  /** Summed `size` of a batch's items. Default 3.5 MiB (the contract allows 4 MiB per request). */
  maxBytes?: number;
}

export const DefaultBatch: Required<BatchOptions> = {
  lingerMs: 5,
  maxMessages: 500,
  maxBytes: 3.5 * 1024 * 1024,
};

/** One item waiting in a batch, with the promise of its caller. */
export interface BatchEntry<T, R> {
  item: T;
  resolve(value: R): void;
  reject(error: unknown): void;
}

/**
 * Sends one batch and settles each entry. Entries it leaves unsettled are
 * rejected with the error it throws (or a generic one if it returns).
 */
export type FlushFn<T, R> = (key: string, entries: BatchEntry<T, R>[]) => Promise<void>;

interface OpenBatch<T, R> {
  entries: BatchEntry<T, R>[];
  bytes: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Coalesces items into batches per key. */
export class Batcher<T extends { size: number }, R> {
  readonly #flush: FlushFn<T, R>;
  readonly #keyOf: (item: T) => string;
  readonly #orderKeyOf: (item: T) => string | undefined;
  readonly #options: Required<BatchOptions>;
  readonly #open = new Map<string, OpenBatch<T, R>>();
  readonly #lastByOrderKey = new Map<string, Promise<void>>();
  readonly #inflight = new Set<Promise<void>>();

  constructor(
    flush: FlushFn<T, R>,
    keyOf: (item: T) => string,
    orderKeyOf: (item: T) => string | undefined = () => undefined,
    options: BatchOptions = {},
  ) {
    this.#flush = flush;
    this.#keyOf = keyOf;
    this.#orderKeyOf = orderKeyOf;
    this.#options = { ...DefaultBatch, ...options };
    if (this.#options.maxMessages < 1) this.#options.maxMessages = 1;
  }

  /** Items waiting in open batches (not yet flushed). */
  get waiting(): number {
    let n = 0;
    for (const b of this.#open.values()) n += b.entries.length;
    return n;
  }

  /** Adds an item; resolves with what the flush gives it. */
  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const key = this.#keyOf(item);
      let batch = this.#open.get(key);
      // An item that would overflow the byte budget starts a new batch; an
      // item bigger than the budget on its own still goes (alone), and the
      // broker decides.
      if (batch && batch.bytes + item.size > this.#options.maxBytes) {
        this.#flushKey(key);
        batch = undefined;
      }
      if (!batch) {
        batch = { entries: [], bytes: 0, timer: undefined };
        this.#open.set(key, batch);
        batch.timer = setTimeout(() => this.#flushKey(key), this.#options.lingerMs);
      }
      batch.entries.push({ item, resolve, reject });
      batch.bytes += item.size;
      if (batch.entries.length >= this.#options.maxMessages) this.#flushKey(key);
    });
  }

  /** Sends every open batch now and waits until all batches in flight have settled. */
  async flush(): Promise<void> {
    for (const key of [...this.#open.keys()]) this.#flushKey(key);
    while (this.#inflight.size) await Promise.all([...this.#inflight]);
  }

  #flushKey(key: string): void {
    const batch = this.#open.get(key);
    if (!batch) return;
    this.#open.delete(key);
    if (batch.timer !== undefined) clearTimeout(batch.timer);
    const entries = batch.entries;
    const orderKeys = new Set<string>();
    for (const e of entries) {
      const k = this.#orderKeyOf(e.item);
      if (k !== undefined) orderKeys.add(k);
    }
    const before: Promise<void>[] = [];
    for (const k of orderKeys) {
      const p = this.#lastByOrderKey.get(k);
      if (p) before.push(p);
    }
    const run = (before.length ? Promise.all(before) : Promise.resolve())
      .then(() => this.#flush(key, entries))
      .then(
        () => settleRest(entries, new Error("batch flush left an entry unsettled")),
        (e: unknown) => settleRest(entries, e),
      );
    for (const k of orderKeys) this.#lastByOrderKey.set(k, run);
    this.#inflight.add(run);
    void run.then(() => {
      this.#inflight.delete(run);
      for (const k of orderKeys)
        if (this.#lastByOrderKey.get(k) === run) this.#lastByOrderKey.delete(k);
    });
  }
}

/** Rejects entries still unsettled. Settling a promise twice is a no-op, so this is safe after partial settling. */
function settleRest<T, R>(entries: BatchEntry<T, R>[], error: unknown): void {
  for (const e of entries) e.reject(error);
}
