/**
 * Purge: every stored message, pending schedule, receipt, dead letter and
 * open half message of a queue goes, config and group positions kept.
 *
 * A multi-GB queue cannot be deleted in one request (the platform's 30 s of
 * CPU), so a purge is a mark, set at once, and a cleanup in bounded steps.
 * The mark is three floors in the counters: log offsets below `purge_floor`,
 * scheduled ids below `sched_floor` and half messages prepared before
 * `half_floor` are gone for every read from the moment of the purge (the
 * answer's `minOffset` is the new floor); the purge deletes a first step of
 * rows itself and the alarm deletes the rest, a step per run (due-work.ts).
 */
import { BATCH } from "../timers/timing.ts";
import { deleteLogRange, takeBytes } from "./log.ts";
import { HalfState } from "./schema.ts";
import { COUNTER_KEYS, type StoreState } from "./state.ts";

/** A shard's purge. */
export class Purging {
  constructor(private readonly state: StoreState) {}

  /** Purges the queue: marks everything stored as gone and deletes a first step of it. */
  purge(now: number): { minOffset: number } {
    this.state.topicConfig();
    const c = this.state.counters;
    const min = c.next_offset;
    c.purge_floor = min;
    c.sched_floor =
      this.state.sql.exec<{ id: number | null }>("SELECT max(id) AS id FROM scheduled").one().id ??
      0;
    c.sched_floor++;
    // Half messages prepared from now on are not purged (see Transactions.prepare).
    c.half_floor = now + 1;
    c.messages = 0;
    c.bytes = 0;
    c.scheduled = 0;
    c.half_open = 0;
    c.half_bytes = 0;
    c.purge_pending = 1;
    this.state.sql.exec(
      `UPDATE grp SET committed = CASE WHEN committed IS NULL THEN NULL ELSE max(committed, ?) END,
       pop_next = CASE WHEN pop_next IS NULL THEN NULL ELSE max(pop_next, ?) END, updated_at = ?`,
      min,
      min,
      now,
    );
    this.step(now);
    this.state.saveCounters(...COUNTER_KEYS);
    // Scheduled messages and receipts are gone with their timers.
    this.state.effects.rearm = true;
    return { minOffset: min };
  }

  /** Whether rows below a purge's floors may still be stored. */
  get pending(): boolean {
    return this.state.counters.purge_pending === 1;
  }

  /**
   * Deletes one bounded step of what a purge left: at most `BATCH.purge` rows
   * of each table (and `BATCH.deleteBytes` of messages). Records more due
   * work when rows are left; clears the pending mark when none are.
   */
  step(now: number): { more: boolean } {
    const c = this.state.counters;
    if (c.purge_pending !== 1) return { more: false };
    const sql = this.state.sql;
    let more = false;

    const rows = takeBytes(
      sql.exec<{ msg_offset: number; size: number }>(
        "SELECT msg_offset, size FROM log WHERE msg_offset < ? ORDER BY msg_offset LIMIT ?",
        c.purge_floor,
        BATCH.purge,
      ),
    );
    if (rows.length) deleteLogRange(sql, 0, rows[rows.length - 1]!.msg_offset);
    more ||= rows.cut || rows.length === BATCH.purge;

    for (const table of ["inflight", "dlq"] as const) {
      const n = sql.exec(
        `DELETE FROM ${table} WHERE (grp, msg_offset) IN
           (SELECT grp, msg_offset FROM ${table} WHERE msg_offset < ? LIMIT ?)`,
        c.purge_floor,
        BATCH.purge,
      ).rowsWritten;
      // rowsWritten counts index entries too: only "fewer than asked" proves the table done.
      more ||= n >= BATCH.purge;
    }

    const scheduled = takeBytes(
      sql.exec<{ id: number; size: number }>(
        "SELECT id, length(msg) AS size FROM scheduled WHERE id < ? ORDER BY id LIMIT ?",
        c.sched_floor,
        BATCH.purge,
      ),
    );
    if (scheduled.length) {
      sql.exec(
        "DELETE FROM scheduled WHERE id <= ? AND id < ?",
        scheduled[scheduled.length - 1]!.id,
        c.sched_floor,
      );
    }
    more ||= scheduled.cut || scheduled.length === BATCH.purge;

    // Open half messages from before the purge end as rolled back (their record stays a
    // day, like every ended transaction's; the message itself is dropped at once).
    const halves = sql.exec(
      `UPDATE half SET state = ${HalfState.rolledBack}, ended_at = ?, end_reason = 'purge',
         check_at = NULL, msg = '{}'
       WHERE id IN (SELECT id FROM half WHERE state = ${HalfState.open} AND created_at < ? LIMIT ?)`,
      now,
      c.half_floor,
      BATCH.purge,
    ).rowsWritten;
    more ||= halves >= BATCH.purge;

    if (more) this.state.effects.moreDue = true;
    else c.purge_pending = 0;
    this.state.saveCounters("purge_pending");
    return { more };
  }
}
