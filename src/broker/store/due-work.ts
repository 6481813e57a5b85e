/**
 * The timer work of a shard: what its one alarm does when it fires, and when
 * it should next fire. Each kind of work is a bounded batch; one that leaves
 * more behind records `moreDue`, and the alarm fires again at once.
 */
import { nextAlarmAt, retentionDueAt, scheduledAlarmAt } from "../timers/timing.ts";
import type { ShardStore } from "./index.ts";
import type { DueCheck } from "./transactions.ts";

/** What one run of due work did that the object acts on. */
export interface DueWorkDone {
  /** Scheduled messages moved into the log (paces the next move). */
  moved: number;
  /** Check-backs claimed: the object asks the producer groups, outside the transaction. */
  checks: DueCheck[];
}

/**
 * Runs the work due at `now`: moves due scheduled messages into the log,
 * lapses receipts, notices retries come due, sweeps retention when due, and
 * claims due check-backs. The effects (appends, changes, timers, more work)
 * are recorded in the store as it goes.
 */
export function runDueWork(s: ShardStore, now: number): DueWorkDone {
  // The alarm that ran this is spent: the next one is set from what is left.
  s.state.effects.rearm = true;
  const { moved } = s.scheduling.moveDue(now);
  s.consumption.lapseReceipts(now);
  s.consumption.noticeDueRetries(now);
  const config = s.state.topicConfig();
  const sweepAt = retentionDueAt(s.log.oldestStoredAt(), config.retentionMs, s.log.lastSweep);
  if (sweepAt !== null && sweepAt <= now) s.log.sweepRetention(now);
  return { moved, checks: s.transactions.claimDueChecks(now) };
}

/**
 * The time the shard's alarm is next due: the earliest of its timers
 * (scheduled messages paced after the last move at `lastMoveAt`, receipts and
 * retries, check-backs, the retention sweep, push subscriptions backing off), `now` when `more` work is left,
 * or null when nothing is pending.
 */
export function nextDueAt(s: ShardStore, now: number, lastMoveAt: number, more: boolean) {
  const config = s.state.topicConfig();
  return nextAlarmAt(
    [
      scheduledAlarmAt(s.scheduling.nextScheduledAt(), lastMoveAt),
      s.consumption.nextVisibleAt(now),
      s.transactions.nextCheckAt(),
      retentionDueAt(s.log.oldestStoredAt(), config.retentionMs, s.log.lastSweep),
      s.push.nextDueAt(now),
    ],
    now,
    more,
  );
}
