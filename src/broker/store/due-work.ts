/**
 * The timer work of a shard: what its one alarm does when it fires, and when
 * it should next fire. The work comes in kinds ({@link DUE_KINDS}); the
 * object runs each in a transaction of its own, so one that fails (a bad
 * row, a bug) does not undo or hold up the others, and a kind that failed
 * waits a growing while before its next try (timers/due-backoff.ts) instead
 * of failing on every alarm. Within a kind, rows that keep failing are set
 * aside (parking.ts). Each kind is a bounded batch; one that leaves more
 * behind records `moreDue`, and the alarm fires again at once.
 */
import { nextAlarmAt, retentionDueAt, scheduledAlarmAt } from "../timers/timing.ts";
import type { ShardStore } from "./index.ts";
import type { DueCheck } from "./transactions.ts";

/** The kinds of timer work, in the order one alarm run does them. */
export const DUE_KINDS = [
  /** Scheduled messages come due: moved into the log. */
  "scheduled",
  /** Receipts whose invisible time lapsed become retries or dead letters; retries come due. */
  "lapses",
  /** What a purge left: deleted in bounded steps. */
  "purge",
  /** Messages past retention: deleted. */
  "retention",
  /** Resends of every dead letter of a group: the next step. */
  "resends",
  /** Open half messages past their maximum lifetime: rolled back. */
  "lifetimes",
  /** Transaction check-backs: claimed (the object asks the producer groups). */
  "checks",
] as const;

export type DueKind = (typeof DUE_KINDS)[number];

/** What one kind of due work did that the object acts on. */
export interface DueWorkDone {
  /** Scheduled messages moved into the log (paces the next move). */
  moved: number;
  /** Check-backs claimed: the object asks the producer groups, outside the transaction. */
  checks: DueCheck[];
}

/**
 * Runs one kind of the work due at `now`, recording its effects (appends,
 * changes, timers, more work) in the store as it goes.
 */
export function runDueKind(s: ShardStore, kind: DueKind, now: number): DueWorkDone {
  // The alarm that ran this is spent: the next one is set from what is left.
  s.state.effects.rearm = true;
  const done: DueWorkDone = { moved: 0, checks: [] };
  switch (kind) {
    case "scheduled":
      done.moved = s.scheduling.moveDue(now).moved;
      break;
    case "lapses":
      s.consumption.lapseReceipts(now);
      s.consumption.noticeDueRetries(now);
      break;
    case "purge":
      s.purging.step(now);
      break;
    case "retention": {
      // A purge's cleanup goes first: it deletes the oldest rows, which the sweep would scan past.
      if (s.purging.pending) break;
      const sweepAt = retentionDue(s);
      if (sweepAt !== null && sweepAt <= now) s.log.sweepRetention(now);
      break;
    }
    case "resends":
      s.consumption.continueResends(now);
      break;
    case "lifetimes":
      s.transactions.rollBackExpired(now);
      break;
    case "checks":
      done.checks = s.transactions.claimDueChecks(now);
      break;
  }
  return done;
}

function retentionDue(s: ShardStore): number | null {
  const config = s.state.topicConfig();
  return retentionDueAt(s.log.oldestStoredAt(), config.retentionMs, s.log.lastSweep);
}

/**
 * The time the shard's alarm is next due: the earliest time any kind of
 * work is due (scheduled messages paced after the last move at
 * `lastMoveAt`, receipts and retries, a purge's cleanup, the retention
 * sweep, resends, half-message lifetimes, check-backs, push subscriptions
 * backing off), each no sooner than
 * `notBefore` says for its kind (a kind that failed backs off); `now` when
 * `more` work is left; null when nothing is pending.
 */
export function nextDueAt(
  s: ShardStore,
  now: number,
  lastMoveAt: number,
  more: boolean,
  notBefore: (kind: DueKind) => number | null = () => null,
) {
  const due: Record<DueKind, number | null> = {
    scheduled: scheduledAlarmAt(s.scheduling.nextScheduledAt(), lastMoveAt),
    lapses: s.consumption.nextVisibleAt(now),
    purge: s.purging.pending ? now : null,
    retention: s.purging.pending ? null : retentionDue(s),
    resends: s.consumption.pendingResends().length > 0 ? now : null,
    lifetimes: s.transactions.nextLifetimeEndAt(),
    checks: s.transactions.nextCheckAt(),
  };
  const timers = DUE_KINDS.map((kind) => {
    const at = due[kind];
    const wait = notBefore(kind);
    return at === null || wait === null ? at : Math.max(at, wait);
  });
  return nextAlarmAt([...timers, s.push.nextDueAt(now)], now, more);
}
