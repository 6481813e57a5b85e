/**
 * The alarm of a shard, and the in-memory timer that runs beside it for
 * timers due soon. A Durable Object has one alarm; the shard keeps it at its
 * earliest timer (see store/due-work.ts for which ones) and mirrors the time
 * it set, so the many writes that each add a timer cost a `setAlarm` only
 * when they move it earlier.
 *
 * Why a second, in-memory timer: the runtime dispatches an alarm with some
 * jitter (about 10 ms at the median locally, 40 ms at p99), a timer in a live
 * object runs closer to its time. The alarm stays armed as the durable
 * backstop, so an evicted or restarted object still runs its timers, and
 * whichever comes second finds nothing due.
 */
import { SOON_HORIZON_MS, durableAlarmAt } from "./timing.ts";

export class ShardTimers {
  /** The alarm time currently set (null: none), mirrored to skip redundant setAlarm calls. */
  #armedAt: number | null = null;
  #soon: { at: number; handle: ReturnType<typeof setTimeout> } | null = null;
  /** When due scheduled messages were last moved into the log (paces the next move). */
  lastMoveAt = 0;

  /**
   * @param storage the object's storage (its alarm).
   * @param run runs the due work; called by the in-memory timer.
   */
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly run: () => Promise<void>,
  ) {}

  /** Reads the alarm time the object had before it (re)started. */
  async load(): Promise<void> {
    this.#armedAt = await this.storage.getAlarm();
  }

  /** The alarm fired: it is no longer set. */
  fired(): void {
    this.#armedAt = null;
  }

  /** Makes sure a timer due at `due` runs: moves the alarm earlier if needed. */
  async ensure(due: number | null, now: number): Promise<void> {
    if (due === null) return;
    this.#armSoon(due, now);
    const at = durableAlarmAt(due, now)!;
    if (this.#armedAt === null || at < this.#armedAt) {
      this.#armedAt = at;
      await this.storage.setAlarm(at);
    }
  }

  /**
   * Moves the durable alarm to `at` if that is earlier, without the
   * in-memory timer: the work then runs in an alarm invocation of its own
   * (with the platform's limits per invocation anew), not in the current one.
   */
  async ensureAlarm(at: number): Promise<void> {
    if (this.#armedAt === null || at < this.#armedAt) {
      this.#armedAt = at;
      await this.storage.setAlarm(at);
    }
  }

  /** Sets the alarm at `next` exactly (null: deletes it), as recomputed from every stored timer. */
  async set(next: number | null, now: number): Promise<void> {
    this.#armSoon(next, now);
    const at = durableAlarmAt(next, now);
    if (at === this.#armedAt) return;
    this.#armedAt = at;
    if (at === null) await this.storage.deleteAlarm();
    else await this.storage.setAlarm(at);
  }

  /** Forgets every timer (the shard's data is being deleted). */
  async clear(): Promise<void> {
    if (this.#soon) clearTimeout(this.#soon.handle);
    this.#soon = null;
    this.#armedAt = null;
    await this.storage.deleteAlarm();
  }

  #armSoon(at: number | null, now: number): void {
    if (at === null || at - now > SOON_HORIZON_MS) return;
    if (this.#soon && this.#soon.at <= at) return;
    if (this.#soon) clearTimeout(this.#soon.handle);
    const handle = setTimeout(
      () => {
        this.#soon = null;
        this.run().catch((e: unknown) => console.error("edgemq: shard timers failed", e));
      },
      Math.max(0, at - now),
    );
    this.#soon = { at, handle };
  }
}
