/**
 * The message log of a shard: append (with dedup, scheduling at send, the
 * backlog bound and its overflow policies), pull, retention, purge and the
 * queue's stats.
 */
import { EdgemqError } from "../../protocol/errors.ts";
import type { MessageFilter } from "../../protocol/filter.ts";
import type { NormalizedMessage } from "../../protocol/validate.ts";
import type {
  Message,
  PullResult,
  OverflowPolicy,
  QueueStats,
  SendResult,
  TopicConfig,
} from "../../protocol/types.ts";
import { BulkLogWriter, type LogValues, writeLogRow } from "./bulk-writer.ts";
import { BATCH, retentionCutoff } from "../timers/timing.ts";
import { Limits } from "../../protocol/limits.ts";
import { HalfState } from "./schema.ts";
import type { KnownId, Sender } from "./msg-ids.ts";
import { COUNTER_KEYS, type LogRow, type StoreState } from "./state.ts";

/** What a batch append can change: saved in the one meta write per batch (sweep and delivery counts are not touched). */
const APPEND_KEYS = COUNTER_KEYS.filter((k) => k !== "last_sweep" && k !== "delivered");

/**
 * A scheduled message as its timer row keeps it: the message and, for a
 * scoped sender, whose msgId space it goes to when it is due. (Rows written
 * before spaces have no sender: the admin space, as before.)
 */
export interface ScheduledMessage extends NormalizedMessage {
  sender?: string;
}

/** The columns a filter looks at, all stored before the body (see {@link ShardLog.filterScan}). */
const FILTER_COLUMNS = "msg_offset, tag, props";
interface FilterColumns {
  msg_offset: number;
  tag: string | null;
  props: string | null;
  [k: string]: SqlStorageValue;
}

/** The log: writes, reads, retention and purge. */
export class ShardLog {
  constructor(private readonly state: StoreState) {}

  /**
   * Appends a batch (already validated) from `sender`, all or nothing: the
   * caller runs this inside one transaction, so a QUEUE_FULL thrown midway
   * stores nothing. Producer msgIds are deduplicated within the sender's own
   * space (msg-ids.ts).
   */
  append(messages: NormalizedMessage[], now: number, sender: Sender): SendResult[] {
    const config = this.state.topicConfig();
    // The batch's producer-chosen ids, read with one statement; appendOne adds the ones it writes.
    const known = this.state.ids.known(
      sender,
      messages.filter((m) => m.clientMsgId).map((m) => m.msgId),
    );
    // Without a backlog bound nothing reads the log in the middle of a batch
    // (eviction does), so the batch's rows can be written together at its end.
    const bounded = config.maxBacklogMessages !== null || config.maxBacklogBytes !== null;
    this.state.bulk = bounded ? null : new BulkLogWriter(this.state.sql);
    try {
      const results: SendResult[] = [];
      for (const m of messages) {
        results.push(this.appendOne(m, now, config, known, sender));
      }
      this.state.bulk?.flush();
      this.state.saveCounters(...APPEND_KEYS);
      return results;
    } finally {
      this.state.bulk = null;
    }
  }

  private appendOne(
    m: NormalizedMessage,
    now: number,
    config: TopicConfig,
    known: Map<string, KnownId>,
    sender: Sender,
  ): SendResult {
    const queue = this.state.queue;
    if (m.clientMsgId) {
      const dup = known.get(m.msgId);
      if (dup && dup.stored_at > now - Limits.dedupWindowMs) {
        return {
          msgId: m.msgId,
          queue,
          offset: dup.msg_offset,
          storedAt: dup.stored_at,
          status: "duplicate",
        };
      }
    }
    if (m.expireAt !== null && m.expireAt <= now) {
      this.state.counters.expired++;
      return { msgId: m.msgId, queue, offset: null, storedAt: now, status: "expired" };
    }
    if (m.deliverAt !== null && m.deliverAt > now) {
      const scheduled: ScheduledMessage = sender === null ? m : { ...m, sender };
      const { id } = this.state.sql
        .exec<{ id: number }>(
          "INSERT INTO scheduled (due_at, msg) VALUES (?, ?) RETURNING id",
          m.deliverAt,
          JSON.stringify(scheduled),
        )
        .one();
      this.state.ids.scheduled(sender, m.msgId, id, now);
      this.state.counters.scheduled++;
      this.state.effects.timer(m.deliverAt);
      if (m.clientMsgId) known.set(m.msgId, { msg_offset: null, stored_at: now });
      return { msgId: m.msgId, queue, offset: null, storedAt: now, status: "scheduled" };
    }
    const stored = this.writeLog(m, now, config, sender);
    if (stored === null) {
      return { msgId: m.msgId, queue, offset: null, storedAt: now, status: "dropped" };
    }
    if (m.clientMsgId)
      known.set(m.msgId, { msg_offset: stored.offset, stored_at: stored.storedAt });
    return {
      msgId: m.msgId,
      queue,
      offset: stored.offset,
      storedAt: stored.storedAt,
      status: "stored",
    };
  }

  /**
   * Writes one message at the next offset, applying the topic's backlog bound,
   * with its msgId in `sender`'s space. Returns null when the policy dropped
   * the incoming message itself.
   */
  writeLog(
    m: NormalizedMessage,
    now: number,
    config: TopicConfig,
    sender: Sender,
  ): { offset: number; storedAt: number } | null {
    if (!this.makeRoom(m, config)) {
      this.state.counters.dropped++;
      return null;
    }
    const offset = this.state.counters.next_offset++;
    // Store time never goes backwards, so the time index agrees with offsets.
    const storedAt = Math.max(now, this.state.counters.last_stored_at);
    this.state.counters.last_stored_at = storedAt;
    const values: LogValues = [
      offset,
      m.msgId,
      m.tag,
      m.keys.length ? JSON.stringify(m.keys) : null,
      m.properties ? JSON.stringify(m.properties) : null,
      m.shardingKey,
      m.body,
      m.encoding === "base64" ? 1 : 0,
      m.priority,
      m.expireAt,
      m.bornAt,
      storedAt,
      m.size,
      m.traceparent ?? null,
      m.tracestate ?? null,
    ];
    const keys = m.keys.length > 1 ? [...new Set(m.keys)] : m.keys;
    if (this.state.bulk) this.state.bulk.add(values, keys, sender);
    else writeLogRow(this.state.sql, values, keys, sender);
    this.state.counters.messages++;
    this.state.counters.bytes += m.size;
    this.state.counters.sent++;
    this.state.effects.appended(offset, storedAt);
    return { offset, storedAt };
  }

  /**
   * Applies the backlog bound before `m` is written: evicts stored messages
   * by the topic's overflow policy, or answers false when the policy drops
   * the incoming one, or throws QUEUE_FULL for `reject`.
   */
  private makeRoom(m: NormalizedMessage, config: TopicConfig): boolean {
    const maxMessages = config.maxBacklogMessages;
    const maxBytes = config.maxBacklogBytes;
    if (maxMessages === null && maxBytes === null) return true;
    const full = () =>
      (maxMessages !== null && this.state.counters.messages + 1 > maxMessages) ||
      (maxBytes !== null && this.state.counters.bytes + m.size > maxBytes);
    if (!full()) return true;
    if (maxBytes !== null && m.size > maxBytes && config.overflowPolicy !== "reject") return false;
    const policy: OverflowPolicy = config.overflowPolicy;
    if (policy === "reject") {
      throw new EdgemqError(
        "QUEUE_FULL",
        `queue ${this.state.queue} of topic ${config.topic} holds its maximum backlog`,
      );
    }
    if (policy === "drop-newest") return false;
    while (full()) {
      const victim = this.victim(policy);
      if (!victim) return false;
      if (policy === "drop-lowest-priority" && victim.priority > m.priority) return false;
      if (
        policy === "drop-earliest-deadline" &&
        m.expireAt !== null &&
        (victim.expire_at === null || m.expireAt < victim.expire_at)
      ) {
        return false;
      }
      this.deleteMessages([victim]);
      this.state.counters.dropped++;
    }
    return true;
  }

  private victim(
    policy: OverflowPolicy,
  ): { msg_offset: number; size: number; priority: number; expire_at: number | null } | undefined {
    const cols = "msg_offset, size, priority, expire_at";
    const order =
      policy === "drop-lowest-priority"
        ? "ORDER BY priority, msg_offset"
        : policy === "drop-earliest-deadline"
          ? // Messages with a deadline go first, earliest deadline first; then the oldest.
            "ORDER BY expire_at IS NULL, expire_at, msg_offset"
          : "ORDER BY msg_offset";
    if (policy === "drop-earliest-deadline") {
      const withDeadline = this.state.sql
        .exec<{ msg_offset: number; size: number; priority: number; expire_at: number | null }>(
          `SELECT ${cols} FROM log WHERE expire_at IS NOT NULL ORDER BY expire_at, msg_offset LIMIT 1`,
        )
        .toArray()[0];
      if (withDeadline) return withDeadline;
      return this.state.sql
        .exec<{ msg_offset: number; size: number; priority: number; expire_at: number | null }>(
          `SELECT ${cols} FROM log ORDER BY msg_offset LIMIT 1`,
        )
        .toArray()[0];
    }
    return this.state.sql
      .exec<{ msg_offset: number; size: number; priority: number; expire_at: number | null }>(
        `SELECT ${cols} FROM log ${order} LIMIT 1`,
      )
      .toArray()[0];
  }

  /** Deletes log rows and their key index entries (the msgId stays for dedup). */
  private deleteMessages(rows: { msg_offset: number; size: number }[]): void {
    for (const r of rows) {
      this.state.sql.exec(
        `DELETE FROM msg_key WHERE msg_offset = ?1 AND key IN
           (SELECT value FROM json_each((SELECT keys FROM log WHERE msg_offset = ?1 AND keys IS NOT NULL)))`,
        r.msg_offset,
      );
      this.state.sql.exec("DELETE FROM log WHERE msg_offset = ?", r.msg_offset);
      this.state.counters.messages--;
      this.state.counters.bytes -= r.size;
    }
  }

  /**
   * Reads up to `max` visible messages from `offset` on. Scans at most a
   * bounded number of rows past filtered-out or expired ones, so a selective
   * filter over a huge backlog answers in bounded time with `nextOffset`
   * moved on.
   */
  pull(offset: number, max: number, filter: MessageFilter, now: number): PullResult {
    const r = this.read(offset, max, filter, now);
    // Counted in memory only; see saveDelivered.
    this.state.counters.delivered += r.messages.length;
    return r;
  }

  /** {@link pull} without counting a delivery: for checks that only look. */
  private read(offset: number, max: number, filter: MessageFilter, now: number): PullResult {
    this.state.topicConfig();
    const minOffset = this.state.minOffset();
    const maxOffset = this.state.maxOffset();
    const skipped = offset < minOffset ? minOffset - offset : 0;
    let next = Math.min(Math.max(offset, minOffset), maxOffset);
    const messages: Message[] = [];
    if (filter.matchesAll) {
      const rows = this.state.sql.exec<LogRow>(
        "SELECT * FROM log WHERE msg_offset >= ? ORDER BY msg_offset LIMIT ?",
        next,
        max,
      );
      let read = 0;
      for (const row of rows) {
        read++;
        next = row.msg_offset + 1;
        if (row.expire_at !== null && row.expire_at <= now) continue;
        messages.push(this.state.toMessage(row));
      }
      // Everything up to the end was read; the rest are gaps left by drops.
      if (messages.length < max && next < maxOffset && read < max) next = maxOffset;
      return { messages, nextOffset: next, minOffset, maxOffset, skipped };
    }
    const scan = this.filterScan(next, filter, now);
    for (const row of scan.rows) {
      if (messages.length >= max) break;
      next = row.msg_offset + 1;
      messages.push(this.state.toMessage(row));
    }
    if (messages.length < max) next = scan.next;
    return { messages, nextOffset: next, minOffset, maxOffset, skipped };
  }

  /**
   * A filtered scan from `offset`: up to `BATCH.scan` rows are looked at, by
   * their tag and properties only (the columns stored before the body, so
   * SQLite never reads a body, nor its overflow pages, to pass over a row);
   * only rows that pass the filter are read whole (and checked for expiry,
   * stored after the body). Yields the live matches in offset order; `next`
   * is where a further scan would start once every yielded row is taken.
   *
   * The rows are yielded lazily, so a caller that stops at the first match
   * (a watcher's check) reads one body at most.
   */
  filterScan(
    offset: number,
    filter: MessageFilter,
    now: number,
  ): { rows: Iterable<LogRow>; readonly next: number } {
    const state = this.state;
    const maxOffset = state.maxOffset();
    const out = { next: offset, rows: [] as Iterable<LogRow> };
    out.rows = (function* () {
      let read = 0;
      for (const head of state.sql.exec<FilterColumns>(
        `SELECT ${FILTER_COLUMNS} FROM log WHERE msg_offset >= ? ORDER BY msg_offset LIMIT ?`,
        offset,
        BATCH.scan,
      )) {
        read++;
        out.next = head.msg_offset + 1;
        if (!state.matches(head, filter)) continue;
        const row = state.logRow(head.msg_offset);
        if (!row || (row.expire_at !== null && row.expire_at <= now)) continue;
        yield row;
      }
      // Everything up to the end was read; the rest are gaps left by drops.
      if (read < BATCH.scan) out.next = Math.max(out.next, maxOffset);
    })();
    return out;
  }

  /** Any message at or after `offset` that the filter would let through? (Bounded scan.) */
  hasPullable(offset: number, filter: MessageFilter, now: number): boolean {
    if (filter.matchesAll) {
      // Looks past expired messages too (a read of one row would stop at the first).
      return (
        this.state.sql
          .exec(
            `SELECT 1 FROM (SELECT expire_at FROM log WHERE msg_offset >= ? ORDER BY msg_offset LIMIT ?)
             WHERE expire_at IS NULL OR expire_at > ? LIMIT 1`,
            offset,
            BATCH.scan,
            now,
          )
          .toArray().length > 0
      );
    }
    for (const _row of this.filterScan(offset, filter, now).rows) return true;
    return false;
  }

  oldestStoredAt(): number | null {
    const row = this.state.sql
      .exec<{ t: number | null }>("SELECT stored_at AS t FROM log ORDER BY msg_offset LIMIT 1")
      .toArray()[0];
    return row?.t ?? null;
  }

  get lastSweep(): number {
    return this.state.counters.last_sweep;
  }

  /** Deletes messages past retention, a bounded batch per call. */
  sweepRetention(now: number): { deleted: number; more: boolean } {
    const config = this.state.topicConfig();
    const cutoff = retentionCutoff(now, config.retentionMs);
    const rows = this.state.sql
      .exec<{ msg_offset: number; size: number }>(
        // Store time never decreases with the offset, so the time index yields the
        // oldest offsets first and the scan stops at the batch size or the cutoff.
        "SELECT msg_offset, size FROM log WHERE stored_at < ? ORDER BY stored_at, msg_offset LIMIT ?",
        cutoff,
        BATCH.retention,
      )
      .toArray();
    if (rows.length) {
      const last = rows[rows.length - 1]!.msg_offset;
      // Expired ones leave the live count of stats() here, so they join the counter.
      this.state.counters.expired += this.countExpired(now, last);
      this.state.sql.exec("DELETE FROM log WHERE msg_offset <= ?", last);
      this.state.sql.exec("DELETE FROM msg_key WHERE msg_offset <= ?", last);
      this.state.sql.exec("DELETE FROM inflight WHERE msg_offset <= ?", last);
      this.state.sql.exec("DELETE FROM dlq WHERE msg_offset <= ?", last);
      for (const r of rows) {
        this.state.counters.messages--;
        this.state.counters.bytes -= r.size;
      }
    }
    // msgIds are kept for the longer of retention and the dedup window. Both
    // deletes are bounded like the log's (a burst of a million sends expires
    // all at once a day later); what is left goes at the next sweep.
    this.state.ids.sweep(now - Math.max(config.retentionMs, Limits.dedupWindowMs), BATCH.retention);
    this.state.sql.exec(
      `DELETE FROM half WHERE id IN (SELECT id FROM half WHERE state <> ${HalfState.open} AND ended_at < ? LIMIT ?)`,
      now - Limits.dedupWindowMs,
      BATCH.retention,
    );
    const more = rows.length === BATCH.retention;
    if (more) this.state.effects.moreDue = true;
    // Only a finished sweep starts the sweep interval: a partial one must go
    // on at once, or retention would fall behind any stream faster than one
    // batch per interval.
    if (!more) this.state.counters.last_sweep = now;
    this.state.saveCounters(...COUNTER_KEYS);
    return { deleted: rows.length, more };
  }

  /** Deletes every stored message (and pending schedule), keeping config and moving group positions up. */
  purge(now: number): { minOffset: number } {
    this.state.topicConfig();
    this.state.sql.exec("DELETE FROM log");
    this.state.sql.exec("DELETE FROM msg_key");
    this.state.sql.exec("DELETE FROM scheduled");
    this.state.ids.forgetSchedules();
    this.state.sql.exec("DELETE FROM inflight");
    this.state.sql.exec("DELETE FROM dlq");
    this.state.counters.messages = 0;
    this.state.counters.bytes = 0;
    this.state.counters.scheduled = 0;
    const min = this.state.counters.next_offset;
    this.state.sql.exec(
      `UPDATE grp SET committed = CASE WHEN committed IS NULL THEN NULL ELSE max(committed, ?) END,
       pop_next = CASE WHEN pop_next IS NULL THEN NULL ELSE max(pop_next, ?) END, updated_at = ?`,
      min,
      min,
      now,
    );
    this.state.saveCounters(...COUNTER_KEYS);
    // Scheduled messages and receipts are gone with their timers.
    this.state.effects.rearm = true;
    return { minOffset: min };
  }

  /** Stored messages past their expireAt (at or below offset `upTo`): never delivered, still counted. */
  private countExpired(now: number, upTo = Number.MAX_SAFE_INTEGER): number {
    return this.state.sql
      .exec<{ n: number }>(
        "SELECT count(*) AS n FROM log WHERE expire_at <= ? AND msg_offset <= ?",
        now,
        upTo,
      )
      .one().n;
  }

  /**
   * Queue statistics. `expired` counts each message that will never be
   * delivered because of its expireAt exactly once: those expired at send or
   * while scheduled, those removed by retention after expiring (the counter),
   * and those still stored past their expireAt (counted live, by the index).
   */
  stats(now: number): QueueStats {
    return {
      queue: this.state.queue,
      minOffset: this.state.minOffset(),
      maxOffset: this.state.maxOffset(),
      messages: this.state.counters.messages,
      bytes: this.state.counters.bytes,
      scheduled: this.state.counters.scheduled,
      dropped: this.state.counters.dropped,
      expired: this.state.counters.expired + this.countExpired(now),
      sent: this.state.counters.sent,
      delivered: this.state.counters.delivered,
    };
  }
}
