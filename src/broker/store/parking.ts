/**
 * Timer work that keeps failing, set aside. The alarm runs each kind of its
 * work in a transaction of its own (due-work.ts), so one kind that fails
 * does not undo the others; within a kind, the rows of a batch are worked as
 * a whole and, when that fails, one by one, so one bad row does not hold up
 * the rest. A row that fails on its own is put off (its own timer moves
 * later, by a delay that doubles), and once it has failed
 * {@link PARK_AFTER_FAILURES} times it is moved to the `parked` table (what
 * it held kept there, with the error) instead of being retried forever, and
 * counted in the queue's stats (`parked`).
 */
import { dueRetryDelayMs } from "../timers/timing.ts";
import type { StoreState } from "./state.ts";

/** Runs of a kind of timer work a row may fail on its own before it is set aside. */
export const PARK_AFTER_FAILURES = 3;

/** The kinds of timer work whose rows may be set aside. */
export type ParkedKind = "scheduled" | "half";

/** A shard's set-aside timer work. */
export class Parking {
  /** Failures per row (`kind:id`), since this object started (a restart gives a row new runs). */
  readonly #failures = new Map<string, number>();

  constructor(private readonly state: StoreState) {}

  /**
   * Works `rows` with `work`, all together in a nested transaction; when
   * that fails, each row in one of its own. A row that fails alone is
   * counted and put off with `defer` (by the delay its failures call for),
   * and set aside with `park` once it has failed {@link PARK_AFTER_FAILURES}
   * times. Answers what the rows that succeeded answered, in order.
   */
  isolate<R, T>(
    kind: ParkedKind,
    rows: readonly R[],
    id: (row: R) => number,
    work: (rows: readonly R[]) => T[],
    defer: (row: R, delayMs: number) => void,
    park: (row: R, error: string) => void,
  ): T[] {
    if (rows.length === 0) return [];
    try {
      const out = this.state.nested(() => work(rows));
      for (const r of rows) this.#failures.delete(`${kind}:${id(r)}`);
      return out;
    } catch {
      const out: T[] = [];
      for (const r of rows) {
        const key = `${kind}:${id(r)}`;
        try {
          out.push(...this.state.nested(() => work([r])));
          this.#failures.delete(key);
        } catch (err) {
          const failures = (this.#failures.get(key) ?? 0) + 1;
          const message = err instanceof Error ? err.message : String(err);
          console.error(`edgemq: ${kind} row ${id(r)} failed (${failures}×): ${message}`);
          if (failures < PARK_AFTER_FAILURES) {
            this.#failures.set(key, failures);
            this.state.nested(() => defer(r, dueRetryDelayMs(failures)));
            continue;
          }
          // Setting it aside writes too: should that fail (a full disk), the kind fails and backs off.
          this.state.nested(() => {
            park(r, message.slice(0, 1000));
            this.state.counters.parked++;
            this.state.saveCounters("parked");
          });
          this.#failures.delete(key);
        }
      }
      return out;
    }
  }

  /** Records a set-aside row: what it held and why. */
  record(kind: ParkedKind, ref: number, payload: string | null, error: string, now: number): void {
    this.state.sql.exec(
      "INSERT INTO parked (kind, ref, payload, error, parked_at) VALUES (?, ?, ?, ?, ?)",
      kind,
      ref,
      payload,
      error,
      now,
    );
  }
}
