/**
 * Timing maths of recurring schedules, as pure functions of `now` (unit-tested
 * in test/unit/schedule-timing.test.ts): the next fire, what an alarm does
 * with a fire that is due (the missed-fire rule), and the backoff of a fire that
 * failed for a passing reason.
 */
import type { CronSpec } from "../protocol/cron.ts";

/** Missed fire times counted at most per catch-up (counting walks them one by one). */
export const MAX_MISSED_COUNTED = 1000;

/** The first fire of a schedule (re)configured at `now`: strictly after it, null if none. */
export function firstFireAt(cron: CronSpec, now: number): number | null {
  return cron.next(now);
}

/** What the alarm sends for a schedule whose earliest pending fire time is due. */
export interface DueFire {
  /** The fire time the one message is sent for (its msgId is `{name}:{fireAt}`). */
  fireAt: number;
  /** Fire times in [pending, fireAt) folded into this one (at most {@link MAX_MISSED_COUNTED}). */
  missed: number;
  /** The fire after this one: strictly after `now`, so the schedule goes on from now. */
  nextAt: number | null;
}

/**
 * The missed-fire rule. `pendingAt` is the earliest fire time not yet sent;
 * at `now` the alarm sends ONE message, for the latest fire time in
 * [pendingAt, now] (so a fire retried moments after a crash keeps its fire
 * time and its msgId, and is stored once by the dedup window), then the
 * schedule goes on from now: the fire times between are not replayed one by
 * one. Null while `pendingAt` is not due yet (an alarm run early).
 */
export function dueFire(cron: CronSpec, pendingAt: number, now: number): DueFire | null {
  if (now < pendingAt) return null;
  // On time (the usual case): no later fire time has come yet.
  const after = cron.next(pendingAt);
  if (after === null || after > now) return { fireAt: pendingAt, missed: 0, nextAt: after };
  // pendingAt is itself a fire time, so the latest one at or before now is never before it.
  const latest = cron.latestAtOrBefore(now);
  const fireAt = latest !== null && latest > pendingAt ? latest : pendingAt;
  let missed = 0;
  for (let t: number | null = pendingAt; t !== null && t < fireAt; t = cron.next(t)) {
    if (++missed >= MAX_MISSED_COUNTED) break;
  }
  return { fireAt, missed, nextAt: cron.next(Math.max(now, fireAt)) };
}

/** First and largest delay before a fire that failed for a passing reason is tried again. */
export const RETRY_FIRST_MS = 1000;
export const RETRY_MAX_MS = 60_000;

/**
 * When a fire that failed for a passing reason (the shard unavailable, the
 * queue full, the disk full) is tried again: 1 s after the first failure,
 * doubling, at most a minute. The retry sends for the latest fire time then
 * due, so fire times passed meanwhile fold into it as after downtime.
 */
export function retryAt(now: number, failures: number): number {
  const exp = Math.min(Math.max(failures - 1, 0), 16);
  return now + Math.min(RETRY_FIRST_MS * 2 ** exp, RETRY_MAX_MS);
}
