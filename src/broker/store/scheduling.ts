/** Scheduled (delayed) messages: their timers, moving due ones into the log, recall. */
import { BulkLogWriter } from "./bulk-writer.ts";
import { BATCH } from "../timers/timing.ts";
import type { ScheduledMessage, ShardLog } from "./log.ts";
import type { Sender } from "./msg-ids.ts";
import { COUNTER_KEYS, type StoreState } from "./state.ts";

/** A shard's scheduled messages. */
export class Scheduling {
  constructor(
    private readonly state: StoreState,
    private readonly log: ShardLog,
  ) {}

  nextScheduledAt(): number | null {
    return this.state.sql.exec<{ t: number | null }>("SELECT min(due_at) AS t FROM scheduled").one()
      .t;
  }

  /**
   * Moves due scheduled messages into the log in due-time order, a bounded
   * batch per call. Idempotent: a moved message's timer row is gone, so an
   * alarm that fires twice moves nothing twice.
   */
  moveDue(now: number): { moved: number; more: boolean } {
    const config = this.state.topicConfig();
    const due = this.state.sql
      .exec<{ id: number; msg: string }>(
        "SELECT id, msg FROM scheduled WHERE due_at <= ? ORDER BY due_at, id LIMIT ?",
        now,
        BATCH.scheduled,
      )
      .toArray();
    // Nothing due (an early or repeated alarm): nothing to write, no commit.
    if (due.length === 0) return { moved: 0, more: false };
    // The timer rows read above, removed with one statement.
    this.state.sql.exec(
      "DELETE FROM scheduled WHERE id IN (SELECT value FROM json_each(?))",
      JSON.stringify(due.map((d) => d.id)),
    );
    // Overflow policy `reject` cannot answer anyone now: the message was
    // acknowledged at send, so it is written regardless of the bound.
    const limits =
      config.overflowPolicy === "reject"
        ? { ...config, maxBacklogBytes: null, maxBacklogMessages: null }
        : config;
    // As in append: without a bound nothing reads the log midway, so the rows go in together.
    const bounded = limits.maxBacklogMessages !== null || limits.maxBacklogBytes !== null;
    this.state.bulk = bounded ? null : new BulkLogWriter(this.state.sql);
    let moved = 0;
    try {
      for (const { id, msg } of due) {
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
    this.state.saveCounters(...COUNTER_KEYS);
    const more = due.length === BATCH.scheduled;
    if (more) this.state.effects.moreDue = true;
    return { moved, more };
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
      if (row.sched_id === null) {
        // Neither in the log nor waiting: a scheduled message a purge removed.
        if (row.msg_offset !== null && outcome === "unknown") outcome = "delivered";
        continue;
      }
      this.state.sql.exec("DELETE FROM scheduled WHERE id = ?", row.sched_id);
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
