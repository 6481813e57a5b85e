/**
 * Waiters grouped by the condition they wait on, so a notify point does its
 * work once per distinct condition, never once per waiter: a hundred parked
 * long-polls of one group with one filter cost one check after a change, not
 * a hundred (issue 16, item 6). Kept apart from any socket type: the
 * shard's watchers (watchers.ts) use it, and so can any other notify point
 * (streaming sessions).
 *
 * - {@link WaitGroups}: waiters by a condition key, with the condition each
 *   group shares; a waiter is in one group at a time.
 * - {@link CheckMemo}: the answers of one notify, by condition key, each
 *   computed once and counted.
 */

/** The waiters of one condition. */
export interface WaitGroup<W, C> {
  readonly key: string;
  readonly condition: C;
  /** In the order they were added or last moved to the back ({@link WaitGroups.toBack}). */
  readonly waiters: Set<W>;
}

/** Waiters by the condition they wait on. */
export class WaitGroups<W, C> {
  readonly #groups = new Map<string, WaitGroup<W, C>>();
  readonly #of = new Map<W, WaitGroup<W, C>>();

  /** Puts `waiter` in the group of `key` (made with `condition` if new), out of any other. */
  add(waiter: W, key: string, condition: C): void {
    const was = this.#of.get(waiter);
    if (was?.key === key) return;
    if (was) this.#leave(waiter, was);
    let group = this.#groups.get(key);
    if (!group) {
      group = { key, condition, waiters: new Set() };
      this.#groups.set(key, group);
    }
    group.waiters.add(waiter);
    this.#of.set(waiter, group);
  }

  /** Takes `waiter` out; false when it was not in. */
  delete(waiter: W): boolean {
    const group = this.#of.get(waiter);
    if (!group) return false;
    this.#leave(waiter, group);
    return true;
  }

  /** Moves `waiter` to the back of its group, so waiters told in turn take turns. */
  toBack(waiter: W): void {
    const group = this.#of.get(waiter);
    if (!group) return;
    group.waiters.delete(waiter);
    group.waiters.add(waiter);
  }

  has(waiter: W): boolean {
    return this.#of.has(waiter);
  }

  /** The groups, as a list (a notify may move waiters between groups while it goes). */
  groups(): WaitGroup<W, C>[] {
    return [...this.#groups.values()];
  }

  /** How many waiters there are. */
  get size(): number {
    return this.#of.size;
  }

  /** How many distinct conditions there are. */
  get conditions(): number {
    return this.#groups.size;
  }

  #leave(waiter: W, group: WaitGroup<W, C>): void {
    group.waiters.delete(waiter);
    this.#of.delete(waiter);
    if (group.waiters.size === 0) this.#groups.delete(group.key);
  }
}

/**
 * The answers of one notify by condition key: each condition is evaluated at
 * most once however many groups or waiters ask for it. An evaluation that
 * throws answers true (the waiter's own look will say what is wrong).
 */
export class CheckMemo {
  readonly #answers = new Map<string, boolean>();
  /** Conditions evaluated so far. */
  runs = 0;

  check(key: string, evaluate: () => boolean): boolean {
    const known = this.#answers.get(key);
    if (known !== undefined) return known;
    this.runs++;
    let answer: boolean;
    try {
      answer = evaluate();
    } catch {
      answer = true;
    }
    this.#answers.set(key, answer);
    return answer;
  }
}
