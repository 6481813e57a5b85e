/**
 * The backoff of a shard's kinds of timer work (see store/due-work.ts): a
 * kind whose run failed is next tried after a growing delay
 * ({@link dueRetryDelayMs}), so a failure that does not go away costs a try
 * now and then instead of an alarm run, and a log line, every few
 * milliseconds; the other kinds go on meanwhile. In memory: a restarted
 * object tries everything at once again.
 */
import type { DueKind } from "../store/due-work.ts";
import { dueRetryDelayMs } from "./timing.ts";

export class DueBackoff {
  readonly #failed = new Map<DueKind, { failures: number; until: number }>();

  /** A run of `kind` failed at `now`: answers when it may run again. */
  failed(kind: DueKind, now: number): number {
    const failures = (this.#failed.get(kind)?.failures ?? 0) + 1;
    const until = now + dueRetryDelayMs(failures);
    this.#failed.set(kind, { failures, until });
    return until;
  }

  /** A run of `kind` succeeded: no more waiting. */
  succeeded(kind: DueKind): void {
    this.#failed.delete(kind);
  }

  /** Whether `kind` may run at `now`. */
  ready(kind: DueKind, now: number): boolean {
    const f = this.#failed.get(kind);
    return f === undefined || f.until <= now;
  }

  /** The earliest time `kind` may run again, or null when it is not backing off. */
  notBefore(kind: DueKind): number | null {
    return this.#failed.get(kind)?.until ?? null;
  }
}
