/**
 * Group commit: concurrent requests to one Durable Object share one SQLite
 * commit. The runtime commits a DO's writes once per event (an implicit
 * transaction, fsynced locally, replicated on Cloudflare), so N concurrent
 * sends arriving as N RPC calls would pay N commits. Here the first request
 * of a quiet moment is written at once; requests arriving while its commit
 * is under way wait, and are then written together, in arrival order, in one
 * event: one commit for the lot.
 *
 * Nothing is acknowledged early: callers are answered as soon as their
 * group is written, and the runtime's output gate holds those answers until
 * the commit is durable.
 */

/** What one item of a group came to. */
export type Settled<O> = { ok: true; value: O } | { ok: false; error: unknown };

interface Pending<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

export class GroupCommit<I, O> {
  #queue: Pending<I, O>[] = [];
  #running = false;
  readonly #write: (items: I[]) => Settled<O>[] | Promise<Settled<O>[]>;
  readonly #durable: () => Promise<void>;

  /**
   * @param write writes a group (each item all or nothing on its own, e.g. in
   *   its own nested transaction) and says what each came to, in order.
   * @param durable resolves when everything written so far is committed
   *   (`ctx.storage.sync()` in a Durable Object).
   */
  constructor(
    write: (items: I[]) => Settled<O>[] | Promise<Settled<O>[]>,
    durable: () => Promise<void>,
  ) {
    this.#write = write;
    this.#durable = durable;
  }

  /** Items waiting for the commit under way (not yet written). */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Queues an item for the next group; resolves with what it came to. */
  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const group = this.#queue;
        this.#queue = [];
        let outcomes: Settled<O>[];
        try {
          outcomes = await this.#write(group.map((p) => p.item));
        } catch (e) {
          for (const p of group) p.reject(e);
          continue;
        }
        group.forEach((p, i) => {
          const o = outcomes[i];
          if (o === undefined) p.reject(new Error("group commit: no outcome for an item"));
          else if (o.ok) p.resolve(o.value);
          else p.reject(o.error);
        });
        // Whatever arrives while this group's commit is under way forms the next group.
        try {
          await this.#durable();
        } catch {
          // A failed commit breaks the object's output gate; its callers see that, not us.
        }
      }
    } finally {
      this.#running = false;
    }
  }
}
