/**
 * Receive (pop): handing a group the messages it may have now, each invisible
 * to it for a while, and telling whether a receive would find anything. The
 * scan that decides what an orderly group may take lives here; what happens
 * to a receipt after (ack, nack, lapse, dead letter) is consumption.ts's.
 */
import type { MessageFilter } from "../../protocol/filter.ts";
import type { GroupConfig, Message } from "../../protocol/types.ts";
import { BATCH, exhausted } from "../timers/timing.ts";
import type { Consumption, InflightRow } from "./consumption.ts";
import type { ShardLog } from "./log.ts";
import { PopState, UNSETTLED } from "./schema.ts";
import type { LogRow, StoreState } from "./state.ts";

const { inflight: STATE_INFLIGHT, acked: STATE_ACKED } = PopState;

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

/** What a receive hands out, before the gateway turns handles into receipts. */
export interface Claimed {
  message: Message;
  handle: string;
}

/** A shard's receive path. */
export class Receiving {
  constructor(
    private readonly state: StoreState,
    private readonly log: ShardLog,
    private readonly consumption: Consumption,
  ) {}

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
        this.consumption.toDeadLetter(group.group, r, now);
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
      const handle = this.consumption.newHandle();
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
    const start = Math.max(this.consumption.popCursor(group.group), this.state.minOffset());
    // Claims of an unordered group are written with one statement after the
    // scan; an orderly group's scan reads its own claims back, so they go in as taken.
    const taken: [number, string, string | null][] = [];
    const cursor = this.scanNew(group, start, max - out.length, filter, now, (row) => {
      const handle = this.consumption.newHandle();
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
    this.consumption.ensureGroupRow(group.group, now);
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
    // Whole rows when most are handed out; without bodies when many may be held back
    // or filtered out (a body is read only for a message taken).
    const lean = group.orderly || !filter.matchesAll;
    const columns = lean ? SCAN_COLUMNS : "*";
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
        const full = lean ? this.state.logRow(off) : (row as LogRow);
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
      const start = Math.max(this.consumption.popCursor(group), this.state.minOffset());
      this.scanNew(config, start, 1, filter, now, () => (found = true), true);
      return found;
    }
    return this.log.hasPullable(this.consumption.popCursor(group), filter, now);
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
    const start = Math.max(from, this.consumption.popCursor(group), this.state.minOffset());
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
}
