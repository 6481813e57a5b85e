/**
 * Group commit: the writes of concurrent calls to one Durable Object share
 * one SQLite commit. The runtime commits a DO's writes once per event (an
 * implicit transaction; fsynced locally, replicated on Cloudflare), so N
 * concurrent sends, receives or acks arriving as N RPC calls would pay N
 * commits; locally each fsync also stalls the whole process. Here the first
 * write of a quiet moment runs at once; writes submitted while its commit is
 * under way wait, and then run together, in arrival order, in one event: one
 * commit for the lot.
 *
 * Nothing is acknowledged early: callers are answered as soon as their
 * group has run, and the runtime's output gate holds those answers until the
 * commit is durable.
 */

interface Pending {
  write: () => unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export class GroupCommit {
  #queue: Pending[] = [];
  #running = false;
  readonly #durable: () => Promise<void>;
  readonly #afterGroup: (() => void | Promise<void>) | undefined;

  /**
   * @param durable resolves when everything written so far is committed
   *   (`ctx.storage.sync()` in a Durable Object).
   * @param afterGroup runs once after each group's writes, before anyone is
   *   answered (arming alarms, waking waiters); if it throws, the whole group
   *   gets its error.
   */
  constructor(durable: () => Promise<void>, afterGroup?: () => void | Promise<void>) {
    this.#durable = durable;
    this.#afterGroup = afterGroup;
  }

  /** Writes submitted but not yet run (waiting for the commit under way). */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Runs `write` (synchronous: each one all or nothing on its own, e.g. in its
   * own nested transaction) in the next group; resolves with what it returned
   * or rejects with what it threw, without affecting the other writes.
   */
  submit<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ write, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const group = this.#queue;
        this.#queue = [];
        const outcomes = group.map((p) => {
          try {
            return { ok: true as const, value: p.write() };
          } catch (error) {
            return { ok: false as const, error };
          }
        });
        let failed: { error: unknown } | null = null;
        try {
          await this.#afterGroup?.();
        } catch (error) {
          failed = { error };
        }
        group.forEach((p, i) => {
          const o = outcomes[i]!;
          if (failed) p.reject(failed.error);
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
