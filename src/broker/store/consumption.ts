/**
 * Consumption by groups, after a message is handed out (receive.ts hands it
 * out): committed offsets and resets, ack, nack, invisibility, lapsed
 * receipts, retries, dead letters and per-group stats.
 */
import { EdgemqError, badRequest } from "../../protocol/errors.ts";
import type { GroupConfig, GroupQueueStats, Message } from "../../protocol/types.ts";
import { BATCH, exhausted, retryDelayMs } from "../timers/timing.ts";
import { Limits } from "../../protocol/limits.ts";
import { PopState, UNSETTLED } from "./schema.ts";
import type { LogRow, StoreState } from "./state.ts";

export interface InflightRow {
  msg_offset: number;
  state: number;
  visible_at: number;
  deliveries: number;
  handle: string;
  sharding_key: string | null;
  [k: string]: SqlStorageValue;
}

const RECEIPT_EXPIRED = {
  ok: false,
  code: "RECEIPT_EXPIRED",
  message: "the receipt's invisible time lapsed, or it was already used",
} as const;

const { inflight: STATE_INFLIGHT, retry: STATE_RETRY, acked: STATE_ACKED } = PopState;

/** A receipt's address inside a shard. */
export interface ReceiptRef {
  offset: number;
  handle: string;
}

/** Where a group's position is reset to. */
export type ResetTarget = { timestamp: number } | { to: "earliest" | "latest" };

export type AckOutcome = { ok: true } | { ok: false; code: "RECEIPT_EXPIRED"; message: string };

/** A shard's consumer groups: positions, receipts, retries and dead letters. */
export class Consumption {
  constructor(private readonly state: StoreState) {}

  /** Records a group first seen here (its config snapshot comes with its first receive or nack). */
  ensureGroupRow(group: string, now: number): void {
    if (!this.state.groups.has(group)) {
      // A group first seen here without config gets the defaults recorded by the gateway later.
      this.state.sql.exec(
        "INSERT OR IGNORE INTO grp (name, config, updated_at) VALUES (?, ?, ?)",
        group,
        JSON.stringify({ group }),
        now,
      );
    }
  }

  committedOffset(group: string): number | null {
    const row = this.state.sql
      .exec<{ committed: number | null }>("SELECT committed FROM grp WHERE name = ?", group)
      .toArray()[0];
    return row?.committed ?? null;
  }

  commitOffset(group: string, offset: number, now: number): void {
    this.state.topicConfig();
    if (offset > this.state.maxOffset()) {
      throw badRequest(`offset ${offset} is beyond maxOffset ${this.state.maxOffset()}`);
    }
    this.ensureGroupRow(group, now);
    this.state.sql.exec(
      "UPDATE grp SET committed = ?, updated_at = ? WHERE name = ?",
      offset,
      now,
      group,
    );
  }

  /** The first offset stored at or after `timestamp`, or maxOffset when none is. */
  offsetForTimestamp(timestamp: number): number {
    const row = this.state.sql
      .exec<{ o: number | null }>(
        "SELECT msg_offset AS o FROM log WHERE stored_at >= ? ORDER BY stored_at, msg_offset LIMIT 1",
        timestamp,
      )
      .toArray()[0];
    return row?.o ?? this.state.maxOffset();
  }

  /**
   * Moves a group to a point in its queue: the first message stored at or
   * after a time (store time, to the millisecond), or either end.
   */
  resetGroupTo(group: string, to: ResetTarget, now: number): number {
    this.state.topicConfig();
    const offset =
      "timestamp" in to
        ? this.offsetForTimestamp(to.timestamp)
        : to.to === "earliest"
          ? this.state.minOffset()
          : this.state.maxOffset();
    return this.resetGroup(group, offset, now);
  }

  /**
   * Moves a group to `offset`, for both consumption modes: the committed pull
   * offset and the pop cursor. Outstanding receipts of the group end (their
   * messages are handed out again from the new position).
   */
  resetGroup(group: string, offset: number, now: number): number {
    this.state.topicConfig();
    const target = Math.min(Math.max(offset, this.state.minOffset()), this.state.maxOffset());
    this.ensureGroupRow(group, now);
    this.state.sql.exec(
      "UPDATE grp SET committed = ?, pop_next = ?, updated_at = ? WHERE name = ?",
      target,
      target,
      now,
      group,
    );
    this.state.sql.exec("DELETE FROM inflight WHERE grp = ?", group);
    // Messages behind the new position are the group's again; its receipts and their timers are gone.
    this.state.effects.changedFor(group);
    this.state.effects.rearm = true;
    return target;
  }

  /** The group's pop cursor: every offset below it was handed out or passed over. */
  popCursor(group: string): number {
    const row = this.state.sql
      .exec<{ pop_next: number | null }>("SELECT pop_next FROM grp WHERE name = ?", group)
      .toArray()[0];
    // A new group starts at the earliest stored message: every group gets every message.
    return row?.pop_next ?? this.state.minOffset();
  }

  /** A fresh receipt handle: unguessable, so a receipt cannot be forged from an offset. */
  newHandle(): string {
    const bytes = crypto.getRandomValues(new Uint8Array(9));
    return btoa(String.fromCharCode(...bytes))
      .replace(/\+/g, "-")
      .replace(/\//g, "_");
  }

  /** The in-flight row a receipt names, or null when it lapsed or was already used. */
  private receiptRow(group: string, ref: ReceiptRef, now: number): InflightRow | null {
    const r = this.state.sql
      .exec<InflightRow>(
        "SELECT * FROM inflight WHERE grp = ? AND msg_offset = ?",
        group,
        ref.offset,
      )
      .toArray()[0];
    if (!r || r.handle !== ref.handle || r.state !== STATE_INFLIGHT || r.visible_at <= now) {
      return null;
    }
    return r;
  }

  /** Settles receipts with three statements whatever their number (a batch of acks is the hot path). */
  ack(group: string, refs: ReceiptRef[], now: number): AckOutcome[] {
    const cursor = this.popCursor(group);
    const rows = new Map<number, InflightRow>();
    for (const r of this.state.sql.exec<InflightRow>(
      "SELECT * FROM inflight WHERE grp = ? AND msg_offset IN (SELECT value FROM json_each(?))",
      group,
      JSON.stringify(refs.map((ref) => ref.offset)),
    )) {
      rows.set(r.msg_offset, r);
    }
    const done: number[] = [];
    const ahead: number[] = [];
    const out = refs.map((ref): AckOutcome => {
      const r = rows.get(ref.offset);
      if (!r || r.handle !== ref.handle || r.state !== STATE_INFLIGHT || r.visible_at <= now) {
        return RECEIPT_EXPIRED;
      }
      rows.delete(ref.offset); // the same receipt twice in one call: the second finds it used
      // Acked ahead of an orderly group's cursor: remembered, so no rescan redelivers it.
      (r.msg_offset >= cursor ? ahead : done).push(r.msg_offset);
      // An ack can free an orderly group's key: its waiting receives look again. (Nothing
      // else: an unordered group, or a message without a key, holds nothing back.)
      if (r.sharding_key !== null && this.state.groupConfig(group)?.orderly !== false)
        this.state.effects.changedFor(group);
      return { ok: true };
    });
    if (done.length) {
      this.state.sql.exec(
        "DELETE FROM inflight WHERE grp = ? AND msg_offset IN (SELECT value FROM json_each(?))",
        group,
        JSON.stringify(done),
      );
    }
    if (ahead.length) {
      this.state.sql.exec(
        `UPDATE inflight SET state = ${STATE_ACKED} WHERE grp = ? AND msg_offset IN (SELECT value FROM json_each(?))`,
        group,
        JSON.stringify(ahead),
      );
    }
    return out;
  }

  nack(
    group: GroupConfig,
    refs: ReceiptRef[],
    delayMs: number | undefined,
    now: number,
  ): AckOutcome[] {
    this.state.rememberGroup(group, now);
    return refs.map((ref) => {
      const r = this.receiptRow(group.group, ref, now);
      if (!r) return RECEIPT_EXPIRED;
      this.retryLater(group, r, delayMs ?? retryDelayMs(r.deliveries, group.retryDelaysMs), now);
      return { ok: true };
    });
  }

  /** A failed delivery: retry after `delay`, or dead-letter once the group's limit is reached. */
  private retryLater(group: GroupConfig, r: InflightRow, delay: number, now: number): void {
    if (exhausted(r.deliveries, group.maxReconsumeTimes)) {
      this.toDeadLetter(group.group, r, now);
      return;
    }
    this.state.sql.exec(
      `UPDATE inflight SET state = ${STATE_RETRY}, visible_at = ?, handle = '' WHERE grp = ? AND msg_offset = ?`,
      now + delay,
      group.group,
      r.msg_offset,
    );
    this.state.effects.timer(now + delay);
    // A retry due now is receivable at once.
    if (delay <= 0) this.state.effects.changedFor(group.group);
  }

  toDeadLetter(group: string, r: InflightRow, now: number): void {
    // A dead letter frees an orderly group's key.
    this.state.effects.changedFor(group);
    if (r.msg_offset >= this.popCursor(group)) {
      // Ahead of an orderly group's cursor: keep a settled marker, or the cursor would hand it out anew.
      this.state.sql.exec(
        `UPDATE inflight SET state = ${STATE_ACKED}, handle = '' WHERE grp = ? AND msg_offset = ?`,
        group,
        r.msg_offset,
      );
    } else {
      this.state.sql.exec(
        "DELETE FROM inflight WHERE grp = ? AND msg_offset = ?",
        group,
        r.msg_offset,
      );
    }
    this.state.sql.exec(
      "INSERT OR IGNORE INTO dlq (grp, msg_offset, reconsume_times, moved_at) VALUES (?, ?, ?, ?)",
      group,
      r.msg_offset,
      r.deliveries - 1,
      now,
    );
  }

  changeInvisibility(group: string, ref: ReceiptRef, invisibleMs: number, now: number): string {
    const r = this.receiptRow(group, ref, now);
    if (!r) throw new EdgemqError("RECEIPT_EXPIRED", RECEIPT_EXPIRED.message);
    const handle = this.newHandle();
    this.state.sql.exec(
      "UPDATE inflight SET visible_at = ?, handle = ? WHERE grp = ? AND msg_offset = ?",
      now + invisibleMs,
      handle,
      group,
      r.msg_offset,
    );
    this.state.effects.timer(now + invisibleMs);
    return handle;
  }

  /**
   * Turns receipts whose invisible time lapsed into retries (visible at once,
   * as the contract says) or dead letters. Returns how many it handled and
   * whether more remain.
   */
  lapseReceipts(now: number): { handled: number; more: boolean } {
    const rows = this.state.sql
      .exec<InflightRow & { grp: string }>(
        `SELECT grp, msg_offset, state, visible_at, deliveries, handle, sharding_key FROM inflight
         WHERE state = ${STATE_INFLIGHT} AND visible_at <= ? ORDER BY visible_at LIMIT ?`,
        now,
        BATCH.lapsed,
      )
      .toArray();
    for (const r of rows) {
      const group = this.state.groupConfig(r.grp);
      const max = group?.maxReconsumeTimes ?? Limits.defaultMaxReconsumeTimes;
      if (exhausted(r.deliveries, max)) this.toDeadLetter(r.grp, r, now);
      else {
        this.state.sql.exec(
          "UPDATE inflight SET state = ?, handle = '' WHERE grp = ? AND msg_offset = ?",
          STATE_RETRY,
          r.grp,
          r.msg_offset,
        );
      }
    }
    const more = rows.length === BATCH.lapsed;
    // A lapsed receipt is a retry visible at once.
    for (const r of rows) this.state.effects.changedFor(r.grp);
    if (more) this.state.effects.moreDue = true;
    return { handled: rows.length, more };
  }

  /** Records that retries came due by `now` (their groups' waiting receives look again); writes nothing. */
  noticeDueRetries(now: number): void {
    // One probe of the due index per group this shard knows (a handful), not a scan of every retry.
    for (const group of this.state.groups.keys()) {
      const due = this.state.sql
        .exec(
          `SELECT 1 FROM inflight WHERE grp = ? AND ${UNSETTLED} AND visible_at <= ? AND state = ${STATE_RETRY} LIMIT 1`,
          group,
          now,
        )
        .toArray();
      if (due.length) this.state.effects.changedFor(group);
    }
  }

  /** The earliest future time a receipt lapses or a retry comes due. */
  nextVisibleAt(now: number): number | null {
    const lapsedNow = this.state.sql
      .exec(
        `SELECT 1 FROM inflight WHERE state = ${STATE_INFLIGHT} AND visible_at <= ? LIMIT 1`,
        now,
      )
      .toArray();
    if (lapsedNow.length) return now;
    const row = this.state.sql
      .exec<{ t: number | null }>(
        `SELECT min(visible_at) AS t FROM inflight WHERE ${UNSETTLED} AND visible_at > ?`,
        now,
      )
      .one();
    return row.t;
  }

  deadLetters(group: string, limit: number): Message[] {
    return this.state.sql
      .exec<LogRow & { reconsume_times: number }>(
        `SELECT log.*, dlq.reconsume_times FROM dlq JOIN log ON log.msg_offset = dlq.msg_offset
         WHERE dlq.grp = ? ORDER BY dlq.msg_offset LIMIT ?`,
        group,
        limit,
      )
      .toArray()
      .map((row) => this.state.toMessage(row, row.reconsume_times));
  }

  /** Takes dead letters (all, or those with the given msgIds) back to the group, reconsumeTimes 0. */
  resendDeadLetters(group: string, msgIds: string[] | null, now: number): string[] {
    const rows = this.state.sql
      .exec<{ msg_offset: number; msg_id: string; sharding_key: string | null }>(
        `SELECT dlq.msg_offset, log.msg_id, log.sharding_key FROM dlq
         JOIN log ON log.msg_offset = dlq.msg_offset WHERE dlq.grp = ?`,
        group,
      )
      .toArray()
      .filter((r) => msgIds === null || msgIds.includes(r.msg_id));
    for (const r of rows) {
      this.state.sql.exec("DELETE FROM dlq WHERE grp = ? AND msg_offset = ?", group, r.msg_offset);
      this.state.sql.exec(
        `INSERT OR REPLACE INTO inflight (grp, msg_offset, state, visible_at, deliveries, handle, sharding_key)
         VALUES (?, ?, 1, ?, 0, '', ?)`,
        group,
        r.msg_offset,
        now,
        r.sharding_key,
      );
    }
    if (rows.length) this.state.effects.changedFor(group);
    return rows.map((r) => r.msg_id);
  }

  groupStats(group: string): GroupQueueStats {
    const maxOffset = this.state.maxOffset();
    const minOffset = this.state.minOffset();
    const g = this.state.sql
      .exec<{ committed: number | null; pop_next: number | null }>(
        "SELECT committed, pop_next FROM grp WHERE name = ?",
        group,
      )
      .toArray()[0];
    const counts = this.state.sql
      .exec<{ inflight: number; retrying: number; lowest: number | null }>(
        `SELECT sum(state = ${STATE_INFLIGHT}) AS inflight, sum(state = ${STATE_RETRY}) AS retrying,
           min(CASE WHEN ${UNSETTLED} THEN msg_offset END) AS lowest FROM inflight WHERE grp = ?`,
        group,
      )
      .one();
    const dlq = this.state.sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM dlq WHERE grp = ?", group)
      .one().n;
    let offset: number;
    if (g?.committed !== null && g?.committed !== undefined) offset = g.committed;
    else if (g?.pop_next !== null && g?.pop_next !== undefined) {
      offset = Math.min(g.pop_next, counts.lowest ?? g.pop_next);
    } else offset = minOffset;
    const stats: GroupQueueStats = {
      queue: this.state.queue,
      offset,
      maxOffset,
      lag: Math.max(0, maxOffset - offset),
      inflight: counts.inflight ?? 0,
      retrying: counts.retrying ?? 0,
      dlq,
    };
    if (offset < minOffset) stats.lostToRetention = minOffset - offset;
    return stats;
  }
}
