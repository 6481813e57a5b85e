/**
 * The msgId index, scoped per sender (api.md, "Dedup is per sender"): dedup
 * of producer retries, lookup by id and recall act within one sender's space.
 *
 * A sender is the subject (`sub`) of a scoped token, or null: the one space
 * of the admin token, Service Bindings and the open local mode. The admin
 * space lives in `ids` (where every msgId stored before spaces existed stays,
 * and keeps deduplicating), the others in `sender_ids` (schema step 2 says
 * why two tables). Lookups for null (admin) see every space; a scoped sender
 * sees only its own, so one token's msgId can never shadow another's, nor tell
 * it that another sender used the same id.
 *
 * All the SQL over both tables is here; the bulk writer uses
 * {@link writeIdRows} for the rows of a batch.
 */
import { Limits } from "../../protocol/limits.ts";

/** Who a call acts for: a scoped token's subject, or null for the admin space (which sees all). */
export type Sender = string | null;

/** A msgId index row as the dedup check needs it. */
export interface KnownId {
  msg_offset: number | null;
  stored_at: number;
}

/** One row of the index, in whichever space it is. */
export interface IdRow {
  sender: Sender;
  msg_id: string;
  msg_offset: number | null;
  sched_id: number | null;
  stored_at: number;
}

/** A stored message's index row for the bulk writer: msgId, offset, store time, sender. */
export type IdValues = [msgId: string, offset: number, storedAt: number, sender: Sender];

/**
 * Writes stored messages' index rows, each in its sender's space, with one
 * statement per space (the rows travel as one JSON array, as the log's do).
 */
export function writeIdRows(sql: SqlStorage, rows: readonly IdValues[]): void {
  const admin: string[] = [];
  const scoped: string[] = [];
  for (const r of rows) (r[3] === null ? admin : scoped).push(JSON.stringify(r));
  if (admin.length) {
    sql.exec(
      `INSERT OR REPLACE INTO ids (msg_id, msg_offset, sched_id, stored_at)
       SELECT value->>0, value->>1, NULL, value->>2 FROM json_each(?)`,
      `[${admin.join(",")}]`,
    );
  }
  if (scoped.length) {
    sql.exec(
      `INSERT OR REPLACE INTO sender_ids (msg_id, sender, msg_offset, sched_id, stored_at)
       SELECT value->>0, value->>3, value->>1, NULL, value->>2 FROM json_each(?)`,
      `[${scoped.join(",")}]`,
    );
  }
}

/** Writes one stored message's index row in its sender's space. */
export function writeIdRow(
  sql: SqlStorage,
  sender: Sender,
  msgId: string,
  offset: number,
  storedAt: number,
): void {
  if (sender === null) {
    sql.exec(
      "INSERT OR REPLACE INTO ids (msg_id, msg_offset, sched_id, stored_at) VALUES (?, ?, NULL, ?)",
      msgId,
      offset,
      storedAt,
    );
  } else {
    sql.exec(
      `INSERT OR REPLACE INTO sender_ids (msg_id, sender, msg_offset, sched_id, stored_at)
       VALUES (?, ?, ?, NULL, ?)`,
      msgId,
      sender,
      offset,
      storedAt,
    );
  }
}

/** The msgId index of one shard. */
export class MsgIds {
  constructor(private readonly sql: SqlStorage) {}

  /**
   * The index rows of `msgIds` in `sender`'s own space, read with one
   * statement (the dedup check of a batch: only the sender's own ids count).
   */
  known(sender: Sender, msgIds: readonly string[]): Map<string, KnownId> {
    const known = new Map<string, KnownId>();
    if (msgIds.length === 0) return known;
    const list = JSON.stringify(msgIds);
    const rows =
      sender === null
        ? this.sql.exec<{ msg_id: string; msg_offset: number | null; stored_at: number }>(
            "SELECT msg_id, msg_offset, stored_at FROM ids WHERE msg_id IN (SELECT value FROM json_each(?))",
            list,
          )
        : this.sql.exec<{ msg_id: string; msg_offset: number | null; stored_at: number }>(
            `SELECT msg_id, msg_offset, stored_at FROM sender_ids
             WHERE sender = ? AND msg_id IN (SELECT value FROM json_each(?))`,
            sender,
            list,
          );
    for (const r of rows) known.set(r.msg_id, { msg_offset: r.msg_offset, stored_at: r.stored_at });
    return known;
  }

  /** Records a scheduled message: its index row points at its timer row until it is due. */
  scheduled(sender: Sender, msgId: string, schedId: number, now: number): void {
    if (sender === null) {
      this.sql.exec(
        "INSERT OR REPLACE INTO ids (msg_id, msg_offset, sched_id, stored_at) VALUES (?, NULL, ?, ?)",
        msgId,
        schedId,
        now,
      );
    } else {
      this.sql.exec(
        `INSERT OR REPLACE INTO sender_ids (msg_id, sender, msg_offset, sched_id, stored_at)
         VALUES (?, ?, NULL, ?, ?)`,
        msgId,
        sender,
        schedId,
        now,
      );
    }
  }

  /**
   * The rows of `msgId` that `sender` may see: its own for a scoped sender;
   * for the admin (null), the admin space's first, then every other sender's,
   * oldest first (each sender may have used the same id once).
   */
  lookup(sender: Sender, msgId: string): IdRow[] {
    type Row = {
      msg_id: string;
      msg_offset: number | null;
      sched_id: number | null;
      stored_at: number;
      [k: string]: SqlStorageValue;
    };
    if (sender !== null) {
      return this.sql
        .exec<Row & { sender: string }>(
          "SELECT sender, msg_id, msg_offset, sched_id, stored_at FROM sender_ids WHERE msg_id = ? AND sender = ?",
          msgId,
          sender,
        )
        .toArray();
    }
    const own = this.sql
      .exec<Row>("SELECT msg_id, msg_offset, sched_id, stored_at FROM ids WHERE msg_id = ?", msgId)
      .toArray()
      .map((r): IdRow => ({ ...r, sender: null }));
    const others = this.sql
      .exec<Row & { sender: string }>(
        // A range of the primary key (msg_id, sender); bounded by the number of senders of one id.
        `SELECT sender, msg_id, msg_offset, sched_id, stored_at FROM sender_ids
         WHERE msg_id = ? ORDER BY stored_at LIMIT ?`,
        msgId,
        Limits.maxQueryLimit,
      )
      .toArray();
    return [...own, ...others];
  }

  /** Removes one index row (a recalled message's). */
  remove(row: Pick<IdRow, "sender" | "msg_id">): void {
    if (row.sender === null) this.sql.exec("DELETE FROM ids WHERE msg_id = ?", row.msg_id);
    else {
      this.sql.exec(
        "DELETE FROM sender_ids WHERE msg_id = ? AND sender = ?",
        row.msg_id,
        row.sender,
      );
    }
  }

  /** Removes a scheduled message's index row, if it still points at timer row `schedId`. */
  removeScheduled(sender: Sender, msgId: string, schedId: number): void {
    if (sender === null) {
      this.sql.exec("DELETE FROM ids WHERE msg_id = ? AND sched_id = ?", msgId, schedId);
    } else {
      this.sql.exec(
        "DELETE FROM sender_ids WHERE msg_id = ? AND sender = ? AND sched_id = ?",
        msgId,
        sender,
        schedId,
      );
    }
  }

  /**
   * Deletes index rows stored before `cutoff` that wait for no timer, at most
   * `limit` per space per call (a burst of a million sends expires all at once
   * a day later); what is left goes at the next sweep.
   */
  sweep(cutoff: number, limit: number): void {
    this.sql.exec(
      `DELETE FROM ids WHERE msg_id IN
         (SELECT msg_id FROM ids WHERE stored_at < ? AND sched_id IS NULL ORDER BY stored_at LIMIT ?)`,
      cutoff,
      limit,
    );
    this.sql.exec(
      `DELETE FROM sender_ids WHERE (msg_id, sender) IN
         (SELECT msg_id, sender FROM sender_ids WHERE stored_at < ? AND sched_id IS NULL
          ORDER BY stored_at LIMIT ?)`,
      cutoff,
      limit,
    );
  }

  /**
   * After a purge: scheduled messages are gone, but their msgIds stay for the
   * dedup window, so a producer retrying a send from before the purge does not
   * bring the message back. (The sweep removes them later.)
   */
  forgetSchedules(): void {
    this.sql.exec("UPDATE ids SET sched_id = NULL WHERE sched_id IS NOT NULL");
    this.sql.exec("UPDATE sender_ids SET sched_id = NULL WHERE sched_id IS NOT NULL");
  }
}
