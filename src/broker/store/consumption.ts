/**
 * Consumption by groups: committed offsets, receive (pop) with invisible
 * time, ack, nack, lapsed receipts, retries, dead letters, the orderly scan
 * and per-group stats.
 */
import { EdgemqError, badRequest } from "../../protocol/errors.ts";
import type { MessageFilter } from "../../protocol/filter.ts";
import type { GroupConfig, GroupQueueStats, Message } from "../../protocol/types.ts";
import { BATCH, exhausted, retryDelayMs } from "../timers/timing.ts";
import { Limits } from "../../protocol/limits.ts";
import type { ShardLog } from "./log.ts";
import { PopState, UNSETTLED } from "./schema.ts";
import type { LogRow, StoreState } from "./state.ts";

/** The columns an orderly scan reads: no body. */
const SCAN_COLUMNS = "msg_offset, sharding_key, tag, props, expire_at";
interface ScanRow {
  msg_offset: number;
  sharding_key: string | null;
  tag: string | null;
  props: string | null;
  expire_at: number | null;
  [k: string]: SqlStorageValue;
}

interface InflightRow {
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

/** What a receive hands out, before the gateway turns handles into receipts. */
export interface Claimed {
  message: Message;
  handle: string;
}

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
  constructor(
    private readonly state: StoreState,
    private readonly log: ShardLog,
  ) {}

  private ensureGroupRow(group: string, now: number): void {
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
    this.state.effects.changed = true;
    this.state.effects.rearm = true;
    return target;
  }

  private popCursor(group: string): number {
    const row = this.state.sql
      .exec<{ pop_next: number | null }>("SELECT pop_next FROM grp WHERE name = ?", group)
      .toArray()[0];
    // A new group starts at the earliest stored message: every group gets every message.
    return row?.pop_next ?? this.state.minOffset();
  }

  private newHandle(): string {
    const bytes = crypto.getRandomValues(new Uint8Array(9));
    return btoa(String.fromCharCode(...bytes))
      .replace(/\+/g, "-")
      .replace(/\//g, "_");
  }

  /**
   * Hands out up to `max` messages to `group`: first those due again (retries
   * and lapsed receipts), then new ones from the group's cursor. Each is
   * invisible to the group for `invisibleMs`.
   */
  receive(
    group: GroupConfig,
    max: number,
    invisibleMs: number,
    filter: MessageFilter,
    now: number,
  ): Claimed[] {
    this.state.topicConfig();
    this.state.rememberGroup(group, now);
    const out: Claimed[] = [];
    const visibleAt = now + invisibleMs;

    // 1. Messages due again, oldest due first.
    const due = this.state.sql
      .exec<InflightRow>(
        `SELECT msg_offset, state, visible_at, deliveries, handle, sharding_key FROM inflight
         WHERE grp = ? AND ${UNSETTLED} AND visible_at <= ? ORDER BY visible_at, msg_offset LIMIT ?`,
        group.group,
        now,
        max,
      )
      .toArray();
    for (const r of due) {
      if (r.state === STATE_INFLIGHT && exhausted(r.deliveries, group.maxReconsumeTimes)) {
        this.toDeadLetter(group.group, r, now);
        continue;
      }
      const row = this.state.logRow(r.msg_offset);
      if (
        !row ||
        (row.expire_at !== null && row.expire_at <= now) ||
        !this.state.matches(row, filter)
      ) {
        // An expired one is counted by stats(), once, however many groups pass it.
        this.state.sql.exec(
          "DELETE FROM inflight WHERE grp = ? AND msg_offset = ?",
          group.group,
          r.msg_offset,
        );
        continue;
      }
      const handle = this.newHandle();
      this.state.sql.exec(
        `UPDATE inflight SET state = ${STATE_INFLIGHT}, visible_at = ?, deliveries = deliveries + 1, handle = ?
         WHERE grp = ? AND msg_offset = ?`,
        visibleAt,
        handle,
        group.group,
        r.msg_offset,
      );
      out.push({ message: this.state.toMessage(row, r.deliveries), handle });
    }
    if (out.length >= max) {
      this.state.effects.timer(visibleAt);
      this.state.counters.delivered += out.length;
      this.state.saveCounters("expired", "delivered");
      return out;
    }

    // 2. New messages from the cursor.
    const start = Math.max(this.popCursor(group.group), this.state.minOffset());
    // Claims of an unordered group are written with one statement after the
    // scan; an orderly group's scan reads its own claims back, so they go in as taken.
    const taken: [number, string, string | null][] = [];
    const cursor = this.scanNew(group, start, max - out.length, filter, now, (row) => {
      const handle = this.newHandle();
      if (group.orderly) {
        this.state.sql.exec(
          `INSERT INTO inflight (grp, msg_offset, state, visible_at, deliveries, handle, sharding_key)
           VALUES (?, ?, 0, ?, 1, ?, ?)`,
          group.group,
          row.msg_offset,
          visibleAt,
          handle,
          row.sharding_key,
        );
      } else {
        taken.push([row.msg_offset, handle, row.sharding_key]);
      }
      out.push({ message: this.state.toMessage(row, 0), handle });
    });
    if (taken.length) {
      this.state.sql.exec(
        `INSERT INTO inflight (grp, msg_offset, state, visible_at, deliveries, handle, sharding_key)
         SELECT ?, value->>0, 0, ?, 1, value->>1, value->>2 FROM json_each(?)`,
        group.group,
        visibleAt,
        JSON.stringify(taken),
      );
    }
    this.ensureGroupRow(group.group, now);
    // Write only what changed: a receive that finds nothing then commits
    // nothing, so its answer waits for no fsync (a receive asks every queue).
    const stored = this.state.sql
      .exec<{ p: number | null }>("SELECT pop_next AS p FROM grp WHERE name = ?", group.group)
      .toArray()[0]?.p;
    if (stored !== cursor) {
      this.state.sql.exec("UPDATE grp SET pop_next = ? WHERE name = ?", cursor, group.group);
    }
    if (out.length) {
      this.state.effects.timer(visibleAt);
      this.state.counters.delivered += out.length;
      this.state.saveCounters("delivered");
    }
    return out;
  }

  /**
   * Walks the log from `start` for messages the group never had, calling
   * `take` for each one it may have now (at most `room`), and answers the new
   * pop cursor: every offset below it was handed out or passed over (filtered
   * out, expired). With `probe` nothing is written.
   *
   * An orderly group's cursor stops at the first message held back by its
   * sharding key. Past that point SQLite is asked for candidates only (not
   * handed out yet, key not blocked), without bodies, so a long run of one
   * blocked key does not starve the keys behind it, up to
   * `BATCH.orderlyWindow` offsets past the held message.
   */
  private scanNew(
    group: GroupConfig,
    start: number,
    room: number,
    filter: MessageFilter,
    now: number,
    take: (row: LogRow) => void,
    probe = false,
  ): number {
    let cursor = start;
    let taken = 0;
    let read = 0;
    if (room <= 0) return cursor;
    const live = (row: ScanRow) =>
      (row.expire_at === null || row.expire_at > now) && this.state.matches(row, filter);
    // Offsets handed out ahead of the cursor (by an orderly group, or one that
    // was orderly before its config changed): never handed out twice.
    const claimed = new Map<number, number>();
    for (const r of this.state.sql.exec<{ msg_offset: number; state: number }>(
      "SELECT msg_offset, state FROM inflight WHERE grp = ? AND msg_offset >= ?",
      group.group,
      start,
    )) {
      claimed.set(r.msg_offset, r.state);
    }
    // An orderly group's keys in flight or waiting to retry hold back their later messages.
    const blocked = new Set<string>();
    if (group.orderly) {
      for (const r of this.state.sql.exec<{ sharding_key: string }>(
        `SELECT DISTINCT sharding_key FROM inflight
         WHERE grp = ? AND ${UNSETTLED} AND sharding_key IS NOT NULL`,
        group.group,
      )) {
        blocked.add(r.sharding_key);
      }
    }
    const takeOne = (row: LogRow) => {
      take(row);
      taken++;
      if (group.orderly && row.sharding_key !== null) blocked.add(row.sharding_key);
    };
    // Whole rows when most are handed out; without bodies when many may be held back.
    const columns = group.orderly ? SCAN_COLUMNS : "*";
    let heldAt: number | null = null;
    for (const row of this.state.sql.exec<ScanRow>(
      `SELECT ${columns} FROM log WHERE msg_offset >= ? ORDER BY msg_offset LIMIT ?`,
      start,
      BATCH.scan,
    )) {
      if (taken >= room) return cursor;
      read++;
      const off = row.msg_offset;
      const state = claimed.get(off);
      if (state !== undefined) {
        // Settled ahead of the cursor: the marker is not needed once passed.
        if (state === STATE_ACKED && !probe) {
          this.state.sql.exec(
            "DELETE FROM inflight WHERE grp = ? AND msg_offset = ?",
            group.group,
            off,
          );
        }
      } else if (live(row)) {
        if (row.sharding_key !== null && blocked.has(row.sharding_key)) {
          heldAt = off;
          break;
        }
        const full = group.orderly ? this.state.logRow(off) : (row as LogRow);
        if (full) takeOne(full);
      }
      cursor = off + 1;
    }
    // Everything up to the end was read; the rest are gaps left by drops.
    if (heldAt === null)
      return read < BATCH.scan ? Math.max(cursor, this.state.maxOffset()) : cursor;
    if (taken >= room) return cursor;
    // Past the held message: candidates only, found by SQLite (not handed out, key not blocked).
    const candidates = this.state.sql
      .exec<ScanRow>(
        `SELECT ${SCAN_COLUMNS} FROM log WHERE msg_offset > ? AND msg_offset <= ?
           AND NOT EXISTS (SELECT 1 FROM inflight i WHERE i.grp = ? AND i.msg_offset = log.msg_offset)
           AND (sharding_key IS NULL OR sharding_key NOT IN (SELECT sharding_key FROM inflight
             WHERE grp = ? AND ${UNSETTLED} AND sharding_key IS NOT NULL))
         ORDER BY msg_offset LIMIT ?`,
        heldAt,
        heldAt + BATCH.orderlyWindow,
        group.group,
        group.group,
        BATCH.scan,
      )
      .toArray();
    for (const row of candidates) {
      if (taken >= room) break;
      if (!live(row) || (row.sharding_key !== null && blocked.has(row.sharding_key))) continue;
      const full = this.state.logRow(row.msg_offset);
      if (full) takeOne(full);
    }
    return cursor;
  }

  /** Whether a receive by `group` would hand out something now (bounded scan, claims nothing). */
  hasReceivable(group: string, filter: MessageFilter, now: number): boolean {
    const due = this.state.sql
      .exec(
        `SELECT 1 FROM inflight WHERE grp = ? AND ${UNSETTLED} AND visible_at <= ? LIMIT 1`,
        group,
        now,
      )
      .toArray();
    if (due.length) return true;
    const config = this.state.groupConfig(group);
    if (config?.orderly) {
      // The claim's own scan, writing nothing: a blocked key must not wake a waiter (it would spin).
      let found = false;
      const start = Math.max(this.popCursor(group), this.state.minOffset());
      this.scanNew(config, start, 1, filter, now, () => (found = true), true);
      return found;
    }
    return this.log.hasPullable(this.popCursor(group), filter, now);
  }

  /**
   * {@link hasReceivable} for a waiter whose last look found nothing, after
   * messages were appended from `from` on: only those are looked at. An
   * orderly group may take one whose key is not in flight or waiting to retry
   * (an earlier message of a free key would have been found by the last
   * look). Bounded like the claim; may say yes when the claim's window ends
   * first, never no when an appended message is there to take.
   */
  hasReceivableSince(group: string, filter: MessageFilter, now: number, from: number): boolean {
    const config = this.state.groupConfig(group);
    const start = Math.max(from, this.popCursor(group), this.state.minOffset());
    if (!config?.orderly) return this.log.hasPullable(start, filter, now);
    const rows = this.state.sql.exec<ScanRow>(
      `SELECT ${SCAN_COLUMNS} FROM log WHERE msg_offset >= ?
         AND NOT EXISTS (SELECT 1 FROM inflight i WHERE i.grp = ? AND i.msg_offset = log.msg_offset)
         AND (sharding_key IS NULL OR sharding_key NOT IN (SELECT sharding_key FROM inflight
           WHERE grp = ? AND ${UNSETTLED} AND sharding_key IS NOT NULL))
       ORDER BY msg_offset LIMIT ?`,
      start,
      group,
      group,
      BATCH.scan,
    );
    for (const row of rows) {
      if ((row.expire_at === null || row.expire_at > now) && this.state.matches(row, filter))
        return true;
    }
    return false;
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
      // An ack can free an orderly group's key: waiting receives look again.
      this.state.effects.changed = true;
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
    if (delay <= 0) this.state.effects.changed = true;
  }

  private toDeadLetter(group: string, r: InflightRow, now: number): void {
    // A dead letter frees an orderly group's key.
    this.state.effects.changed = true;
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
    if (rows.length) this.state.effects.changed = true;
    if (more) this.state.effects.moreDue = true;
    return { handled: rows.length, more };
  }

  /** Records that retries came due by `now` (their groups' waiting receives look again); writes nothing. */
  noticeDueRetries(now: number): void {
    const due = this.state.sql
      .exec(`SELECT 1 FROM inflight WHERE state = ${STATE_RETRY} AND visible_at <= ? LIMIT 1`, now)
      .toArray();
    if (due.length) this.state.effects.changed = true;
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
    if (rows.length) this.state.effects.changed = true;
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
