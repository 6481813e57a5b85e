/**
 * Long-poll waiters of a shard. A waiter holds a check that is re-run when
 * the shard's state changes (an append, a retry coming due); it resolves with
 * the check's first non-null answer or with null after its wait. No polling:
 * the only timer is the one that ends the wait.
 */
/** What changed, when a wake knows: lets a check look at less than everything. */
export interface WakeHint {
  /** Messages were appended to the log from this offset on (and nothing else changed). */
  appendedFrom?: number;
}

interface Waiter {
  check(hint?: WakeHint): unknown;
  resolve(value: unknown): void;
  timer: ReturnType<typeof setTimeout>;
}

export class Waiters {
  private readonly byId = new Map<string, Waiter>();
  private seq = 0;

  /** `onWake` hears of every wake too (the shard tells its watcher sockets). */
  constructor(private readonly onWake?: (hint?: WakeHint) => void) {}

  get size(): number {
    return this.byId.size;
  }

  wait<T>(
    waitMs: number,
    check: (hint?: WakeHint) => T | null,
    id = `w${++this.seq}`,
  ): Promise<T | null> {
    return new Promise<T | null>((resolve) => {
      const timer = setTimeout(() => {
        this.byId.delete(id);
        resolve(null);
      }, waitMs);
      this.byId.set(id, { check, resolve: resolve as (v: unknown) => void, timer });
    });
  }

  /** Re-runs every waiter's check (with `hint`, when the caller knows what changed); those that now have an answer resolve. */
  wake(hint?: WakeHint): void {
    this.onWake?.(hint);
    for (const [id, w] of this.byId) {
      let value: unknown;
      try {
        value = w.check(hint);
      } catch {
        value = null;
      }
      if (value !== null && value !== undefined) {
        clearTimeout(w.timer);
        this.byId.delete(id);
        w.resolve(value);
      }
    }
  }

  /** Ends one wait early with null. */
  cancel(id: string): void {
    const w = this.byId.get(id);
    if (!w) return;
    clearTimeout(w.timer);
    this.byId.delete(id);
    w.resolve(null);
  }

  cancelAll(): void {
    for (const id of [...this.byId.keys()]) this.cancel(id);
  }
}
