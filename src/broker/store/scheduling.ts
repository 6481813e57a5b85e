/** Scheduled (delayed) messages: their timers, moving due ones into the log, recall. */
import { Limits } from "../../protocol/limits.ts";
import type { TopicConfig } from "../../protocol/types.ts";
import { BulkLogWriter } from "./bulk-writer.ts";
import { BATCH } from "../timers/timing.ts";
import { type ScheduledMessage, type ShardLog, withoutRejectBound } from "./log.ts";
import type { Sender } from "./msg-ids.ts";
import type { Parking } from "./parking.ts";
import { COUNTER_KEYS, type StoreState } from "./state.ts";

/** A timer row as the move reads it. */
interface DueRow {
  id: number;
  msg: string;
  [k: string]: SqlStorageValue;
}

/** A shard's scheduled messages. */
export class Scheduling {
  constructor(
    private readonly state: StoreState,
    private readonly log: ShardLog,
    private readonly parking: Parking,
  ) {}

  nextScheduledAt(): number | null {
    return this.state.sql
      .exec<{ t: number | null }>(
        "SELECT min(due_at) AS t FROM scheduled WHERE id >= ?",
        this.state.counters.sched_floor,
      )
      .one().t;
  }

  /**
   * Moves due scheduled messages into the log in due-time order, a bounded
   * batch per call: at most `BATCH.scheduled` messages and one answer's byte
   * budget of their stored JSON (at least one), so a run of large messages
   * never holds more than that in memory at once. Idempotent: a moved
   * message's timer row is gone, so an alarm that fires twice moves nothing
   * twice.
   */
  moveDue(now: number): { moved: number; more: boolean } {
    const config = this.state.topicConfig();
    const due: DueRow[] = [];
    let bytes = 0;
    let cut = false;
    // Read lazily: rows past the budget are never loaded.
    for (const row of this.state.sql.exec<DueRow>(
      "SELECT id, msg FROM scheduled WHERE due_at <= ? AND id >= ? ORDER BY due_at, id LIMIT ?",
      now,
      this.state.counters.sched_floor,
      BATCH.scheduled,
    )) {
      if (due.length > 0 && bytes + row.msg.length > Limits.maxAnswerBytes) {
        cut = true;
        break;
      }
      due.push(row);
      bytes += row.msg.length;
    }
    // Nothing due (an early or repeated alarm): nothing to write, no commit.
    if (due.length === 0) return { moved: 0, more: false };
    // Overflow policy `reject` cannot answer anyone now: the message was
    // acknowledged at send, so it is written regardless of the bound.
    const limits = withoutRejectBound(config);
    // Together, or (when that fails) one by one: one bad row never holds up the rest.
    const moved = this.parking.isolate(
      "scheduled",
      due,
      (d) => d.id,
      (rows) => [this.moveRows(rows, now, limits)],
      (d, delay) => this.putOff(d.id, now + delay),
      (d, error) => this.park(d.id, error, now),
    );
    this.state.saveCounters(...COUNTER_KEYS);
    const more = cut || due.length === BATCH.scheduled;
    if (more) this.state.effects.moreDue = true;
    return { moved: moved.reduce((a, b) => a + b, 0), more };
  }

  /** Moves due timer rows into the log; answers how many were appended. */
  private moveRows(rows: readonly DueRow[], now: number, limits: TopicConfig): number {
    // The timer rows, removed with one statement.
    this.state.sql.exec(
      "DELETE FROM scheduled WHERE id IN (SELECT value FROM json_each(?))",
      JSON.stringify(rows.map((d) => d.id)),
    );
    // As in append: without a bound nothing reads the log midway, so the rows go in together.
    const bounded = limits.maxBacklogMessages !== null || limits.maxBacklogBytes !== null;
    this.state.bulk = bounded ? null : new BulkLogWriter(this.state.sql);
    let moved = 0;
    try {
      for (const { id, msg } of rows) {
        const { sender, ...m } = JSON.parse(msg) as ScheduledMessage;
        const space = sender ?? null;
        this.state.counters.scheduled--;
        if (m.expireAt !== null && m.expireAt <= now) {
          this.state.counters.expired++;
          this.state.ids.removeScheduled(space, m.msgId, id);
          continue;
        }
        if (this.log.writeLog(m, now, limits, space)) moved++;
      }
      this.state.bulk?.flush();
    } finally {
      this.state.bulk = null;
    }
    return moved;
  }

  /** Moves a failing timer row's due time to `at`, for its next try (see parking.ts). */
  private putOff(id: number, at: number): void {
    this.state.sql.exec("UPDATE scheduled SET due_at = ? WHERE id = ?", at, id);
    this.state.effects.timer(at);
  }

  /** Sets a timer row that keeps failing aside, with what it held (see parking.ts). */
  private park(id: number, error: string, now: number): void {
    const row = this.state.sql
      .exec<DueRow>("SELECT id, msg FROM scheduled WHERE id = ?", id)
      .toArray()[0];
    if (!row) return;
    this.parking.record("scheduled", id, row.msg, error, now);
    this.state.sql.exec("DELETE FROM scheduled WHERE id = ?", id);
    this.state.counters.scheduled--;
    this.state.saveCounters("scheduled");
  }

  /**
   * Recalls a scheduled message not yet moved into the log: `sender`'s own
   * (a scoped token never learns of, nor touches, another sender's message
   * of the same msgId); the admin (null) recalls every sender's. Answers what
   * happened rather than throwing, since the gateway asks every queue and all
   * but one are expected to say `unknown`.
   */
  recall(msgId: string, sender: Sender): "recalled" | "delivered" | "unknown" {
    this.state.topicConfig();
    let outcome: "recalled" | "delivered" | "unknown" = "unknown";
    for (const row of this.state.ids.lookup(sender, msgId)) {
      // Neither in the log nor waiting: a scheduled message a purge removed.
      if (row.sched_id === null || row.sched_id < this.state.counters.sched_floor) {
        if (row.msg_offset !== null && outcome === "unknown") outcome = "delivered";
        continue;
      }
      const gone = this.state.sql.exec(
        "DELETE FROM scheduled WHERE id = ?",
        row.sched_id,
      ).rowsWritten;
      // Its timer row was set aside (parking.ts): not waiting any more.
      if (gone === 0) continue;
      this.state.ids.remove(row);
      this.state.counters.scheduled--;
      outcome = "recalled";
    }
    if (outcome === "recalled") {
      this.state.saveCounters("scheduled");
      this.state.effects.rearm = true;
    }
    return outcome;
  }
}
