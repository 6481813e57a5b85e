/**
 * Timing maths of a shard, as pure functions of `now` so they are unit-tested
 * directly: retry backoff, when the single alarm should fire, and how much
 * due work one alarm run may do.
 */

/** At most this many rows of one kind of due work per alarm run or request. */
export const BATCH = {
  /** Scheduled messages moved into the log per alarm run. */
  scheduled: 1000,
  /** Lapsed receipts turned into retries (or dead letters) per alarm run. */
  lapsed: 1000,
  /** Messages deleted by retention per alarm run. */
  retention: 5000,
  /** Transaction check-backs started per alarm run. */
  checks: 32,
  /** Log rows a pull or receive scans past filtered-out messages. */
  scan: 2000,
  /**
   * Offsets past a message held back by its sharding key that an orderly
   * group's receive still searches for other keys (in SQL, without bodies).
   * Keys further behind wait until the held key moves on.
   */
  orderlyWindow: 100_000,
} as const;

/** Retention sweeps run at most this often, so a steady stream does not arm an alarm per message. */
export const RETENTION_SWEEP_INTERVAL_MS = 1000;

/**
 * The delay before the next delivery of a message that has been delivered
 * `deliveries` times and failed: the group's list indexed by the failure
 * count, its last entry repeating (RocketMQ's level backoff).
 */
export function retryDelayMs(deliveries: number, delays: readonly number[]): number {
  if (delays.length === 0) return 0;
  const i = Math.min(Math.max(deliveries - 1, 0), delays.length - 1);
  return delays[i]!;
}

/** Whether a delivery that just failed was the last one the group allows. */
export function exhausted(deliveries: number, maxReconsumeTimes: number): boolean {
  return deliveries > maxReconsumeTimes;
}

/**
 * When the retention sweep is next due: when the oldest stored message
 * passes `retentionMs`, but never sooner than one sweep interval after the
 * last sweep (`lastSweep`), so the sweep batches deletions.
 */
export function retentionDueAt(
  oldestStoredAt: number | null,
  retentionMs: number,
  lastSweep: number,
): number | null {
  if (oldestStoredAt === null) return null;
  return Math.max(oldestStoredAt + retentionMs, lastSweep + RETENTION_SWEEP_INTERVAL_MS);
}

/**
 * The single alarm time of a shard: the earliest of its timers, never in the
 * past (an overdue timer fires as soon as possible), or null when nothing is
 * pending. `more` says a bounded batch left due work behind, so the alarm must
 * fire again at once.
 */
export function nextAlarmAt(
  timers: ReadonlyArray<number | null | undefined>,
  now: number,
  more = false,
): number | null {
  let next: number | null = more ? now : null;
  for (const t of timers) {
    if (t !== null && t !== undefined && (next === null || t < next)) next = t;
  }
  return next === null ? null : Math.max(next, now);
}

/** The cut-off below which stored messages are past retention. */
export function retentionCutoff(now: number, retentionMs: number): number {
  return now - retentionMs;
}

/** How long one transaction check-back may take before it counts as `unknown`. */
export const CHECK_TIMEOUT_MS = 5000;

/** Slack after a check's timeout before the same half message may be checked again. */
const CHECK_GRACE_MS = 1000;

/**
 * Until when a check-back claimed at `now` holds its half message: past the
 * check's timeout, so the checks of one half message never overlap (an
 * overlapping claim would count, and could roll back on, a check whose answer
 * is still on its way). An answered check then sets the next one an interval
 * after its answer; a check lost with the object is retried after this.
 */
export function checkLeaseUntil(now: number): number {
  return now + CHECK_TIMEOUT_MS + CHECK_GRACE_MS;
}

/** Least time between two alarm runs that move scheduled messages, under a dense stream of due times. */
export const SCHEDULED_MIN_GAP_MS = 10;

/**
 * When the alarm should next move scheduled messages: at the earliest due
 * time, but no sooner than `minGapMs` after the last move (`lastMoveAt`). A
 * dense stream of due times (several a millisecond) is then moved in batches,
 * rather than by one alarm, one commit and one wake-up of every waiting
 * consumer per millisecond; a lone message is still moved exactly when due.
 */
export function scheduledAlarmAt(
  nextDue: number | null,
  lastMoveAt: number,
  minGapMs: number = SCHEDULED_MIN_GAP_MS,
): number | null {
  return nextDue === null ? null : Math.max(nextDue, lastMoveAt + minGapMs);
}

/** A shard's next timer due within this long also gets an in-memory timer (more punctual than an alarm). */
export const SOON_HORIZON_MS = 1000;

/** A durable alarm for a timer beyond the soon horizon fires this much early (more than the alarm's jitter). */
export const ALARM_LEAD_MS = 100;

/**
 * When to set the durable alarm for a timer due at `at`: a timer beyond
 * {@link SOON_HORIZON_MS} gets the alarm {@link ALARM_LEAD_MS} early, so the
 * alarm's jitter is spent before the due time; that early run finds the timer
 * within the horizon and sets an in-memory timer for the exact time (and the
 * alarm at it, as the backstop). A timer within the horizon gets the alarm at
 * its time.
 */
export function durableAlarmAt(at: number | null, now: number): number | null {
  if (at === null) return null;
  return at - now > SOON_HORIZON_MS ? at - ALARM_LEAD_MS : at;
}
