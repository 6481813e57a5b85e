/**
 * A bounded map whose entries expire: the gateway's isolate-wide caches of
 * registry facts (topic and group configs, recorded subscriptions).
 *
 * Why every entry has a lifetime: on Cloudflare many isolates run the
 * gateway, each with its own copy of these caches, and a change made through
 * one isolate (a group deleted and recreated, a topic reconfigured) is seen
 * by the others only when their entries expire. Why a bound: an isolate that
 * meets many names must stay inside its 128 MB; the entry written longest
 * ago goes first. Time is passed in (`now`), so the rules are testable.
 */
export class TtlCache<K, V> {
  readonly #entries = new Map<K, { value: V; until: number }>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;

  constructor(ttlMs: number, maxEntries: number) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = Math.max(1, maxEntries);
  }

  /** The value, unless it is missing or its lifetime ended (then it is removed). */
  get(key: K, now: number): V | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (e.until <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  /** Stores `value` for the cache's lifetime from `now`, evicting the oldest entry when full. */
  set(key: K, value: V, now: number): void {
    // Re-inserted so that the Map's order stays the order of writes.
    this.#entries.delete(key);
    this.#entries.set(key, { value, until: now + this.#ttlMs });
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
  }

  delete(key: K): void {
    this.#entries.delete(key);
  }

  /** Removes every entry whose key matches (e.g. all subscriptions of a group). */
  deleteWhere(match: (key: K) => boolean): void {
    for (const key of [...this.#entries.keys()]) if (match(key)) this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}
