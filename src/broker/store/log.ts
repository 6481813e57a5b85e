/**
 * The message log of a shard: append (with dedup, scheduling at send, the
 * backlog bound and its overflow policies), pull, retention, purge and the
 * queue's stats.
 */
import {
  ByteBudget,
  assertRowFits,
  fieldsOf,
  jsonBytes,
  utf8Extra,
} from "../../protocol/encoded-size.ts";
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
import { chooseVictims, excessOver, victimCandidates } from "./overflow.ts";
import { HalfState } from "./schema.ts";
import type { KnownId, Sender } from "./msg-ids.ts";
import { COUNTER_KEYS, type LogRow, type StoreState } from "./state.ts";

/** What a batch append can change: saved in the one meta write per batch. */
const APPEND_KEYS = [
  "next_offset",
  "messages",
  "bytes",
  "scheduled",
  "dropped",
  "expired",
  "last_stored_at",
  "sent",
] as const satisfies readonly (typeof COUNTER_KEYS)[number][];

/**
 * Rows to delete, read lazily up to `BATCH.deleteBytes` of their `size` (at
 * least one): a delete of large messages frees many pages per row.
 * `cut` says the byte bound stopped it.
 */
export function takeBytes<R extends { size: number }>(rows: Iterable<R>): R[] & { cut: boolean } {
  const out = [] as unknown as R[] & { cut: boolean };
  out.cut = false;
  let bytes = 0;
  for (const r of rows) {
    if (out.length > 0 && bytes + r.size > BATCH.deleteBytes) {
      out.cut = true;
      break;
    }
    out.push(r);
    bytes += r.size;
  }
  return out;
}

/**
 * Deletes the log rows from offset `from` to `to` (inclusive) and their key
 * index entries, found through each row's keys (the key index is keyed by
 * key first, so a delete by offset alone would read all of it).
 */
export function deleteLogRange(sql: SqlStorage, from: number, to: number): void {
  sql.exec(
    `DELETE FROM msg_key WHERE (key, msg_offset) IN
       (SELECT j.value, log.msg_offset
        FROM log, json_each(CASE WHEN json_valid(log.keys) THEN log.keys ELSE '[]' END) AS j
        WHERE log.msg_offset >= ? AND log.msg_offset <= ? AND log.keys IS NOT NULL)`,
    from,
    to,
  );
  sql.exec("DELETE FROM log WHERE msg_offset >= ? AND msg_offset <= ?", from, to);
}

/**
 * A topic's config as an admitted batch meets it: a `reject` bound cannot
 * refuse what was admitted (the drop policies' bounds stay).
 */
export function withoutRejectBound(config: TopicConfig): TopicConfig {
  return config.overflowPolicy === "reject"
    ? { ...config, maxBacklogBytes: null, maxBacklogMessages: null }
    : config;
}

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
   * space (msg-ids.ts). An `admitted` batch (a part of a batch spanning
   * queues, whose room was reserved or known to be there: see
   * reservations.ts) is never refused by a `reject` bound; other policies
   * still make room or drop as they do.
   */
  append(
    messages: NormalizedMessage[],
    now: number,
    sender: Sender,
    admitted = false,
  ): SendResult[] {
    const topic = this.state.topicConfig();
    const config = admitted ? withoutRejectBound(topic) : topic;
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
      for (const [i, m] of messages.entries()) {
        results.push(this.appendOne(m, i, now, config, known, sender));
      }
      this.state.bulk?.flush();
      this.state.saveCounters(...APPEND_KEYS);
      return results;
    } finally {
      this.state.bulk = null;
    }
  }

  /**
   * The room a part of a batch spanning queues needs here, when the queue
   * can take it as a send would (see reservations.ts); QUEUE_FULL under a
   * `reject` bound it would pass, counting what is held already.
   */
  reservable(
    messages: readonly Pick<
      NormalizedMessage,
      "msgId" | "clientMsgId" | "size" | "deliverAt" | "expireAt"
    >[],
    now: number,
    sender: Sender,
  ): { messages: number; bytes: number } {
    const config = this.state.topicConfig();
    const need = this.roomNeeded(messages, now, sender);
    if (config.overflowPolicy !== "reject" || need.messages === 0) return need;
    const held = this.state.held(now);
    if (
      (config.maxBacklogMessages !== null &&
        held.messages + need.messages > config.maxBacklogMessages) ||
      (config.maxBacklogBytes !== null && held.bytes + need.bytes > config.maxBacklogBytes)
    ) {
      throw new EdgemqError(
        "QUEUE_FULL",
        `queue ${this.state.queue} of topic ${config.topic} holds its maximum backlog`,
      );
    }
    return need;
  }

  /**
   * The room a batch would take in the log at `now`: its messages that are
   * not duplicates of stored ones, not expired and not scheduled (those take
   * room only when due). What a reservation holds (see reservations.ts).
   */
  roomNeeded(
    messages: readonly Pick<
      NormalizedMessage,
      "msgId" | "clientMsgId" | "size" | "deliverAt" | "expireAt"
    >[],
    now: number,
    sender: Sender,
  ): { messages: number; bytes: number } {
    const known = this.state.ids.known(
      sender,
      messages.filter((m) => m.clientMsgId).map((m) => m.msgId),
    );
    const seen = new Set<string>();
    let count = 0;
    let bytes = 0;
    for (const m of messages) {
      if (m.clientMsgId) {
        const dup = known.get(m.msgId);
        if ((dup && dup.stored_at > now - Limits.dedupWindowMs) || seen.has(m.msgId)) continue;
        seen.add(m.msgId);
      }
      if (m.expireAt !== null && m.expireAt <= now) continue;
      if (m.deliverAt !== null && m.deliverAt > now) continue;
      count++;
      bytes += m.size;
    }
    return { messages: count, bytes };
  }

  private appendOne(
    m: NormalizedMessage,
    index: number,
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
      // The timer row holds the whole message as JSON, which escaping can make twice the body.
      const json = JSON.stringify(scheduled);
      assertRowFits(jsonBytes(json, fieldsOf(m)) + utf8Extra(sender), "a scheduled message", index);
      // Ids only grow, past a purge's mark too (SQLite would reuse 1 once the table is empty).
      const { id } = this.state.sql
        .exec<{ id: number }>(
          `INSERT INTO scheduled (id, due_at, msg)
           SELECT max(coalesce(max(id), 0) + 1, ?), ?, ? FROM scheduled RETURNING id`,
          this.state.counters.sched_floor,
          m.deliverAt,
          json,
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
    if (!this.makeRoom(m, config, now)) {
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
   * by the topic's overflow policy (chosen as a whole first, see
   * overflow.ts), or answers false when the policy drops the incoming one,
   * or throws QUEUE_FULL for `reject`.
   */
  private makeRoom(m: NormalizedMessage, config: TopicConfig, now: number): boolean {
    if (config.maxBacklogMessages === null && config.maxBacklogBytes === null) return true;
    const excess = excessOver(this.state.held(now), m.size, config);
    if (excess === null) return true;
    const policy: OverflowPolicy = config.overflowPolicy;
    if (policy === "reject") {
      throw new EdgemqError(
        "QUEUE_FULL",
        `queue ${this.state.queue} of topic ${config.topic} holds its maximum backlog`,
      );
    }
    if (config.maxBacklogBytes !== null && m.size > config.maxBacklogBytes) return false;
    const candidates = victimCandidates(this.state.sql, policy, this.state.floor);
    const victims = chooseVictims(candidates, m, policy, excess);
    if (victims === null) return false;
    this.deleteMessages(victims);
    this.state.counters.dropped += victims.length;
    return true;
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
   * Reads up to `max` visible messages from `offset` on, within the answer's
   * byte budget (at least one message, so a reader always progresses: a
   * message that does not fit is where `nextOffset` stops). Scans at most a
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
    const budget = new ByteBudget();
    if (filter.matchesAll) {
      // Read lazily: rows past the budget are never loaded.
      const rows = this.state.sql.exec<LogRow>(
        "SELECT * FROM log WHERE msg_offset >= ? ORDER BY msg_offset LIMIT ?",
        next,
        max,
      );
      let read = 0;
      for (const row of rows) {
        read++;
        const live = row.expire_at === null || row.expire_at > now;
        // A message past the budget stops the answer there: the next pull starts with it.
        if (live && !budget.take(this.state.answerBytes(row))) break;
        next = row.msg_offset + 1;
        if (live) messages.push(this.state.toMessage(row));
      }
      // Everything up to the end was read; the rest are gaps left by drops.
      if (!budget.cut && messages.length < max && next < maxOffset && read < max) next = maxOffset;
      return { messages, nextOffset: next, minOffset, maxOffset, skipped };
    }
    const scan = this.filterScan(next, filter, now);
    for (const row of scan.rows) {
      if (messages.length >= max) break;
      if (!budget.take(this.state.answerBytes(row))) break;
      next = row.msg_offset + 1;
      messages.push(this.state.toMessage(row));
    }
    if (messages.length < max && !budget.cut) next = scan.next;
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
            Math.max(offset, this.state.floor),
            BATCH.scan,
            now,
          )
          .toArray().length > 0
      );
    }
    for (const _row of this.filterScan(Math.max(offset, this.state.floor), filter, now).rows) {
      return true;
    }
    return false;
  }

  /** Store time of the oldest message not purged (null when none is stored). */
  oldestStoredAt(): number | null {
    const row = this.state.sql
      .exec<{ t: number | null }>(
        "SELECT stored_at AS t FROM log WHERE msg_offset >= ? ORDER BY msg_offset LIMIT 1",
        this.state.floor,
      )
      .toArray()[0];
    return row?.t ?? null;
  }

  get lastSweep(): number {
    return this.state.counters.last_sweep;
  }

  /**
   * Deletes messages past retention, a bounded batch per call: at most
   * `BATCH.retention` messages and `BATCH.deleteBytes` of them. (While a
   * purge is being cleaned up, that cleanup goes first: see due-work.ts.)
   */
  sweepRetention(now: number): { deleted: number; more: boolean } {
    const config = this.state.topicConfig();
    const cutoff = retentionCutoff(now, config.retentionMs);
    const floor = this.state.floor;
    const rows = takeBytes(
      this.state.sql.exec<{ msg_offset: number; size: number }>(
        // Store time never decreases with the offset, so the time index yields the
        // oldest offsets first and the scan stops at the batch size or the cutoff.
        "SELECT msg_offset, size FROM log WHERE stored_at < ? AND +msg_offset >= ? ORDER BY stored_at, msg_offset LIMIT ?",
        cutoff,
        floor,
        BATCH.retention,
      ),
    );
    if (rows.length) {
      const last = rows[rows.length - 1]!.msg_offset;
      // Expired ones leave the live count of stats() here, so they join the counter.
      this.state.counters.expired += this.countExpired(now, last);
      deleteLogRange(this.state.sql, floor, last);
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
    this.state.ids.sweep(
      now - Math.max(config.retentionMs, Limits.dedupWindowMs),
      BATCH.retention,
      this.state.counters.sched_floor,
    );
    this.state.sql.exec(
      `DELETE FROM half WHERE id IN (SELECT id FROM half WHERE state <> ${HalfState.open} AND ended_at < ? LIMIT ?)`,
      now - Limits.dedupWindowMs,
      BATCH.retention,
    );
    const more = rows.cut || rows.length === BATCH.retention;
    if (more) this.state.effects.moreDue = true;
    // Only a finished sweep starts the sweep interval: a partial one must go
    // on at once, or retention would fall behind any stream faster than one
    // batch per interval.
    if (!more) this.state.counters.last_sweep = now;
    this.state.saveCounters(...COUNTER_KEYS);
    return { deleted: rows.length, more };
  }

  /** Stored messages past their expireAt (at or below offset `upTo`): never delivered, still counted. */
  private countExpired(now: number, upTo = Number.MAX_SAFE_INTEGER): number {
    return this.state.sql
      .exec<{ n: number }>(
        "SELECT count(*) AS n FROM log WHERE expire_at <= ? AND +msg_offset >= ? AND +msg_offset <= ?",
        now,
        this.state.floor,
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
      parked: this.state.counters.parked,
      sent: this.state.counters.sent,
      delivered: this.state.counters.delivered,
    };
  }
}
