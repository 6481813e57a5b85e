/**
 * What a shard's writes call for once they are committed, recorded by the
 * store modules as they write: the store knows what it changed (an append, a
 * new timer, a key freed for an orderly group), so the object never has to
 * re-derive it from results, and no write path can forget to arm the alarm
 * or tell the waiting consumers.
 *
 * The object reads and resets the record once per group commit
 * (QueueShard's `#afterWrites`); a write whose transaction fails puts the
 * record back as it was (see {@link WriteEffects.snapshot}).
 */
export class WriteEffects {
  /** Lowest offset appended to the log: watchers of new messages look from there. */
  appendedFrom: number | null = null;
  /** Store time of the latest append: the retention sweep must be armed. */
  storedAt: number | null = null;
  /**
   * Something besides appends changed what a consumer may be handed (an ack
   * freed an orderly group's key, a retry came due, a reset moved a cursor):
   * the waiting receives of {@link changedGroups} look again.
   */
  changed = false;
  /**
   * The groups whose receivable messages changed besides appends: only their
   * waiting receives look again (an ack of one group never concerns another,
   * nor a pull, which reads by offset).
   */
  changedGroups = new Set<string>();
  /** Earliest timer the writes set (a scheduled message, an invisible time, a check-back). */
  timerAt: number | null = null;
  /** Timers were removed or moved: the alarm is recomputed from the tables. */
  rearm = false;
  /** A bounded batch of due work left more behind: the alarm fires again at once. */
  moreDue = false;

  /** Messages were appended from `offset` on, stored at `storedAt`. */
  appended(offset: number, storedAt: number): void {
    if (this.appendedFrom === null || offset < this.appendedFrom) this.appendedFrom = offset;
    if (this.storedAt === null || storedAt > this.storedAt) this.storedAt = storedAt;
  }

  /** Something besides appends changed what `group` may be handed. */
  changedFor(group: string): void {
    this.changed = true;
    this.changedGroups.add(group);
  }

  /** A timer was set for `at`. */
  timer(at: number): void {
    if (this.timerAt === null || at < this.timerAt) this.timerAt = at;
  }

  /** A copy of the record, to put back if the transaction that follows fails. */
  snapshot(): WriteEffects {
    const copy = Object.assign(new WriteEffects(), this);
    copy.changedGroups = new Set(this.changedGroups);
    return copy;
  }

  /** Puts back a {@link snapshot}. */
  restore(from: WriteEffects): void {
    Object.assign(this, from);
    this.changedGroups = new Set(from.changedGroups);
  }

  /** Whether anything is recorded. */
  get empty(): boolean {
    return (
      this.appendedFrom === null &&
      this.storedAt === null &&
      !this.changed &&
      this.timerAt === null &&
      !this.rearm &&
      !this.moreDue
    );
  }

  /** Hands the record over and starts a new one. */
  take(): WriteEffects {
    const taken = this.snapshot();
    this.restore(new WriteEffects());
    return taken;
  }
}
