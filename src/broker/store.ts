/**
 * The storage logic of one queue shard, over the Durable Object's SQLite
 * handle. No Workers APIs here beyond `SqlStorage`: the QueueShard class is a
 * thin adapter that adds waiting, alarms and RPC around it.
 */
import { EdgemqError, badRequest } from "../protocol/errors.ts";
import type { MessageFilter } from "../protocol/filter.ts";
import type { NormalizedMessage } from "../protocol/validate.ts";
import type {
  GroupConfig,
  GroupQueueStats,
  Message,
  OverflowPolicy,
  QueueStats,
  SendResult,
  TopicConfig,
} from "../protocol/types.ts";
import { BulkLogWriter, type LogValues, writeLogRow } from "./bulk-writer.ts";
import { POLICY_INDEXES, SHARD_SCHEMA } from "./schema.ts";
import { BATCH, checkLeaseUntil, exhausted, retentionCutoff, retryDelayMs } from "./timing.ts";
import { Limits } from "../protocol/limits.ts";

/** A log row as SQLite returns it. */
interface LogRow {
  msg_offset: number;
  msg_id: string;
  tag: string | null;
  keys: string | null;
  props: string | null;
  sharding_key: string | null;
  body: string;
  base64: number;
  priority: number;
  expire_at: number | null;
  born_at: number;
  stored_at: number;
  size: number;
  [k: string]: SqlStorageValue;
}

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

const STATE_INFLIGHT = 0;
const STATE_RETRY = 1;
const STATE_ACKED = 2;

/** Counters kept in `meta`, mirrored in memory. */
interface Counters {
  next_offset: number;
  messages: number;
  bytes: number;
  scheduled: number;
  dropped: number;
  expired: number;
  last_stored_at: number;
  last_sweep: number;
  /** Messages written to the log (sends, due scheduled messages, commits); never decreases. */
  sent: number;
  /** Messages handed out by pull and receive (redeliveries included); never decreases. */
  delivered: number;
}

const COUNTER_KEYS: (keyof Counters)[] = [
  "next_offset",
  "messages",
  "bytes",
  "scheduled",
  "dropped",
  "expired",
  "last_stored_at",
  "last_sweep",
  "sent",
  "delivered",
];

/** What a batch append can change: saved in the one meta write per batch (sweep and delivery counts are not touched). */
const APPEND_KEYS = COUNTER_KEYS.filter((k) => k !== "last_sweep" && k !== "delivered");

/** A msgId index row as the dedup check needs it. */
interface KnownId {
  msg_offset: number | null;
  stored_at: number;
  [k: string]: SqlStorageValue;
}

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

export type AckOutcome = { ok: true } | { ok: false; code: "RECEIPT_EXPIRED"; message: string };

export interface HalfRow {
  id: number;
  msg_id: string;
  producer_group: string;
  msg: string;
  created_at: number;
  check_at: number | null;
  checks: number;
  state: number;
  msg_offset: number | null;
  ended_at: number | null;
  end_reason: string | null;
  [k: string]: SqlStorageValue;
}

export const HALF_OPEN = 0;
export const HALF_COMMITTED = 1;
export const HALF_ROLLED_BACK = 2;

export interface TransactionCheckConfig {
  checkUrl: string | null;
  checkAfterMs: number;
  checkIntervalMs: number;
  maxChecks: number;
}

export type GroupMessageStatus = "consumed" | "pending" | "inflight" | "retrying" | "dlq";

/** "(?, ?), (?, ?), …" for `n` rows, by n (a handful of shapes). */
const pairLists = new Map<number, string>();
function pairs(n: number): string {
  let text = pairLists.get(n);
  if (text === undefined) {
    text = Array.from({ length: n }, () => "(?, ?)").join(", ");
    pairLists.set(n, text);
  }
  return text;
}

export class ShardStore {
  private counters!: Counters;
  private config: TopicConfig | null = null;
  private queue = 0;
  private groups = new Map<string, GroupConfig>();
  /** The delivered count as last saved in meta. */
  private savedDelivered = 0;
  /** Set while an append batch defers its row writes (see bulk-writer.ts). */
  private bulk: BulkLogWriter | null = null;

  constructor(private readonly sql: SqlStorage) {
    this.init();
  }

  /** Creates the schema (idempotent) and loads counters and config. */
  init(): void {
    this.sql.exec(SHARD_SCHEMA);
    const meta = new Map<string, SqlStorageValue>();
    for (const row of this.sql.exec<{ k: string; v: SqlStorageValue }>("SELECT k, v FROM meta")) {
      meta.set(row.k, row.v);
    }
    const counters = {} as Counters;
    for (const k of COUNTER_KEYS) counters[k] = Number(meta.get(k) ?? 0);
    this.counters = counters;
    this.savedDelivered = counters.delivered;
    const config = meta.get("config");
    this.config = typeof config === "string" ? (JSON.parse(config) as TopicConfig) : null;
    this.queue = Number(meta.get("queue") ?? 0);
    this.groups.clear();
    for (const row of this.sql.exec<{ name: string; config: string }>(
      "SELECT name, config FROM grp",
    )) {
      this.groups.set(row.name, JSON.parse(row.config) as GroupConfig);
    }
  }

  // ---- configuration -------------------------------------------------------

  /** The topic config, or TOPIC_NOT_FOUND when this shard was never configured (or deleted). */
  topicConfig(): TopicConfig {
    if (!this.config) throw new EdgemqError("TOPIC_NOT_FOUND", "topic not found");
    return this.config;
  }

  get queueId(): number {
    return this.queue;
  }

  configure(config: TopicConfig, queue: number): void {
    this.config = config;
    this.queue = queue;
    this.setMeta("config", JSON.stringify(config));
    this.setMeta("queue", queue);
    const index = POLICY_INDEXES[config.overflowPolicy as keyof typeof POLICY_INDEXES];
    if (index) this.sql.exec(index);
  }

  /** Records a consumer group's config snapshot (used by alarms, which have no request). */
  rememberGroup(group: GroupConfig, now: number): void {
    const known = this.groups.get(group.group);
    if (known && known.updatedAt === group.updatedAt) return;
    this.groups.set(group.group, group);
    this.sql.exec(
      `INSERT INTO grp (name, config, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`,
      group.group,
      JSON.stringify(group),
      now,
    );
  }

  private groupConfig(name: string): GroupConfig | undefined {
    return this.groups.get(name);
  }

  private setMeta(k: string, v: SqlStorageValue): void {
    this.sql.exec("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", k, v);
  }

  /** Saves counters with one statement (an append saves eight). */
  private saveCounters(...keys: (keyof Counters)[]): void {
    if (keys.length === 0) return;
    const args: SqlStorageValue[] = [];
    for (const k of keys) args.push(k, this.counters[k]);
    this.sql.exec(`INSERT OR REPLACE INTO meta (k, v) VALUES ${pairs(keys.length)}`, ...args);
    if (keys.includes("delivered")) this.savedDelivered = this.counters.delivered;
  }

  /** Whether pulls counted deliveries that are not saved yet. */
  get deliveredUnsaved(): boolean {
    return this.counters.delivered !== this.savedDelivered;
  }

  /**
   * Saves the delivered count when pulls moved it. Pulls only count in memory
   * (a pull then writes nothing, so its answer waits for no commit); the shard
   * saves the count with its next write, or on its own within a second.
   */
  saveDelivered(): void {
    if (this.deliveredUnsaved) this.saveCounters("delivered");
  }

  // ---- offsets -------------------------------------------------------------

  /** First offset still stored (inclusive). */
  minOffset(): number {
    const row = this.sql.exec<{ o: number | null }>("SELECT min(msg_offset) AS o FROM log").one();
    return row.o ?? this.counters.next_offset;
  }

  /** Next offset to be written (exclusive). */
  maxOffset(): number {
    return this.counters.next_offset;
  }

  // ---- append --------------------------------------------------------------

  /**
   * Appends a batch (already validated), all or nothing: the caller runs this
   * inside one transaction, so a QUEUE_FULL thrown midway stores nothing.
   */
  append(messages: NormalizedMessage[], now: number): SendResult[] {
    const config = this.topicConfig();
    const known = this.knownIds(messages);
    // Without a backlog bound nothing reads the log in the middle of a batch
    // (eviction does), so the batch's rows can be written together at its end.
    const bounded = config.maxBacklogMessages !== null || config.maxBacklogBytes !== null;
    this.bulk = bounded ? null : new BulkLogWriter(this.sql);
    try {
      const results: SendResult[] = [];
      for (const m of messages) {
        results.push(this.appendOne(m, now, config, known));
      }
      this.bulk?.flush();
      this.saveCounters(...APPEND_KEYS);
      return results;
    } finally {
      this.bulk = null;
    }
  }

  /**
   * The msgId index rows of a batch's producer-chosen ids, read with one
   * statement; appendOne adds the ones the batch itself writes.
   */
  private knownIds(messages: NormalizedMessage[]): Map<string, KnownId> {
    const known = new Map<string, KnownId>();
    const ids = messages.filter((m) => m.clientMsgId).map((m) => m.msgId);
    if (ids.length === 0) return known;
    for (const row of this.sql.exec<KnownId & { msg_id: string }>(
      "SELECT msg_id, msg_offset, stored_at FROM ids WHERE msg_id IN (SELECT value FROM json_each(?))",
      JSON.stringify(ids),
    )) {
      known.set(row.msg_id, { msg_offset: row.msg_offset, stored_at: row.stored_at });
    }
    return known;
  }

  private appendOne(
    m: NormalizedMessage,
    now: number,
    config: TopicConfig,
    known: Map<string, KnownId>,
  ): SendResult {
    const queue = this.queue;
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
      this.counters.expired++;
      return { msgId: m.msgId, queue, offset: null, storedAt: now, status: "expired" };
    }
    if (m.deliverAt !== null && m.deliverAt > now) {
      const { id } = this.sql
        .exec<{ id: number }>(
          "INSERT INTO scheduled (due_at, msg) VALUES (?, ?) RETURNING id",
          m.deliverAt,
          JSON.stringify(m),
        )
        .one();
      this.sql.exec(
        "INSERT OR REPLACE INTO ids (msg_id, msg_offset, sched_id, stored_at) VALUES (?, NULL, ?, ?)",
        m.msgId,
        id,
        now,
      );
      this.counters.scheduled++;
      if (m.clientMsgId) known.set(m.msgId, { msg_offset: null, stored_at: now });
      return { msgId: m.msgId, queue, offset: null, storedAt: now, status: "scheduled" };
    }
    const stored = this.writeLog(m, now, config);
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
   * Writes one message at the next offset, applying the topic's backlog bound.
   * Returns null when the policy dropped the incoming message itself.
   */
  private writeLog(
    m: NormalizedMessage,
    now: number,
    config: TopicConfig,
  ): { offset: number; storedAt: number } | null {
    if (!this.makeRoom(m, config)) {
      this.counters.dropped++;
      return null;
    }
    const offset = this.counters.next_offset++;
    // Store time never goes backwards, so the time index agrees with offsets.
    const storedAt = Math.max(now, this.counters.last_stored_at);
    this.counters.last_stored_at = storedAt;
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
    ];
    const keys = m.keys.length > 1 ? [...new Set(m.keys)] : m.keys;
    if (this.bulk) this.bulk.add(values, keys);
    else writeLogRow(this.sql, values, keys);
    this.counters.messages++;
    this.counters.bytes += m.size;
    this.counters.sent++;
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
      (maxMessages !== null && this.counters.messages + 1 > maxMessages) ||
      (maxBytes !== null && this.counters.bytes + m.size > maxBytes);
    if (!full()) return true;
    if (maxBytes !== null && m.size > maxBytes && config.overflowPolicy !== "reject") return false;
    const policy: OverflowPolicy = config.overflowPolicy;
    if (policy === "reject") {
      throw new EdgemqError(
        "QUEUE_FULL",
        `queue ${this.queue} of topic ${config.topic} holds its maximum backlog`,
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
      this.counters.dropped++;
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
      const withDeadline = this.sql
        .exec<{ msg_offset: number; size: number; priority: number; expire_at: number | null }>(
          `SELECT ${cols} FROM log WHERE expire_at IS NOT NULL ORDER BY expire_at, msg_offset LIMIT 1`,
        )
        .toArray()[0];
      if (withDeadline) return withDeadline;
      return this.sql
        .exec<{ msg_offset: number; size: number; priority: number; expire_at: number | null }>(
          `SELECT ${cols} FROM log ORDER BY msg_offset LIMIT 1`,
        )
        .toArray()[0];
    }
    return this.sql
      .exec<{ msg_offset: number; size: number; priority: number; expire_at: number | null }>(
        `SELECT ${cols} FROM log ${order} LIMIT 1`,
      )
      .toArray()[0];
  }

  /** Deletes log rows and their key index entries (the msgId stays for dedup). */
  private deleteMessages(rows: { msg_offset: number; size: number }[]): void {
    for (const r of rows) {
      this.sql.exec(
        `DELETE FROM msg_key WHERE msg_offset = ?1 AND key IN
           (SELECT value FROM json_each((SELECT keys FROM log WHERE msg_offset = ?1 AND keys IS NOT NULL)))`,
        r.msg_offset,
      );
      this.sql.exec("DELETE FROM log WHERE msg_offset = ?", r.msg_offset);
      this.counters.messages--;
      this.counters.bytes -= r.size;
    }
  }

  // ---- read ----------------------------------------------------------------

  private toMessage(row: LogRow, reconsumeTimes = 0): Message {
    const config = this.topicConfig();
    const m: Message = {
      msgId: row.msg_id,
      topic: config.topic,
      queue: this.queue,
      offset: row.msg_offset,
      body: row.body,
      encoding: row.base64 ? "base64" : "utf8",
      priority: row.priority,
      bornAt: row.born_at,
      storedAt: row.stored_at,
      reconsumeTimes,
    };
    if (row.tag !== null) m.tag = row.tag;
    if (row.keys !== null) m.keys = JSON.parse(row.keys) as string[];
    if (row.props !== null) m.properties = JSON.parse(row.props) as Record<string, string>;
    if (row.sharding_key !== null) m.shardingKey = row.sharding_key;
    if (row.expire_at !== null) m.expireAt = row.expire_at;
    return m;
  }

  private matches(row: Pick<LogRow, "tag" | "props">, filter: MessageFilter): boolean {
    if (filter.matchesAll) return true;
    return filter.matches({
      tag: row.tag,
      properties: row.props === null ? null : (JSON.parse(row.props) as Record<string, string>),
    });
  }

  /**
   * Reads up to `max` visible messages from `offset` on. Scans at most a
   * bounded number of rows past filtered-out or expired ones, so a selective
   * filter over a huge backlog answers in bounded time with `nextOffset`
   * moved on.
   */
  pull(
    offset: number,
    max: number,
    filter: MessageFilter,
    now: number,
  ): {
    messages: Message[];
    nextOffset: number;
    minOffset: number;
    maxOffset: number;
    skipped: number;
  } {
    const r = this.read(offset, max, filter, now);
    // Counted in memory only; see saveDelivered.
    this.counters.delivered += r.messages.length;
    return r;
  }

  /** {@link pull} without counting a delivery: for checks that only look. */
  private read(
    offset: number,
    max: number,
    filter: MessageFilter,
    now: number,
  ): {
    messages: Message[];
    nextOffset: number;
    minOffset: number;
    maxOffset: number;
    skipped: number;
  } {
    this.topicConfig();
    const minOffset = this.minOffset();
    const maxOffset = this.maxOffset();
    const skipped = offset < minOffset ? minOffset - offset : 0;
    let next = Math.min(Math.max(offset, minOffset), maxOffset);
    const messages: Message[] = [];
    const limit = filter.matchesAll ? max : BATCH.scan;
    const rows = this.sql.exec<LogRow>(
      "SELECT * FROM log WHERE msg_offset >= ? ORDER BY msg_offset LIMIT ?",
      next,
      limit,
    );
    let read = 0;
    for (const row of rows) {
      if (messages.length >= max) break;
      read++;
      next = row.msg_offset + 1;
      if (row.expire_at !== null && row.expire_at <= now) continue;
      if (!this.matches(row, filter)) continue;
      messages.push(this.toMessage(row));
    }
    if (messages.length < max && next < maxOffset && read < limit) {
      // Everything up to the end was read; the rest are gaps left by drops.
      next = maxOffset;
    }
    return { messages, nextOffset: next, minOffset, maxOffset, skipped };
  }

  /** Any message at or after `offset` that the filter would let through? (Bounded scan.) */
  hasPullable(offset: number, filter: MessageFilter, now: number): boolean {
    if (filter.matchesAll) {
      // Looks past expired messages too (a read of one row would stop at the first).
      return (
        this.sql
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
    return this.read(offset, 1, filter, now).messages.length > 0;
  }

  // ---- committed offsets ---------------------------------------------------

  private ensureGroupRow(group: string, now: number): void {
    if (!this.groups.has(group)) {
      // A group first seen here without config gets the defaults recorded by the gateway later.
      this.sql.exec(
        "INSERT OR IGNORE INTO grp (name, config, updated_at) VALUES (?, ?, ?)",
        group,
        JSON.stringify({ group }),
        now,
      );
    }
  }

  committedOffset(group: string): number | null {
    const row = this.sql
      .exec<{ committed: number | null }>("SELECT committed FROM grp WHERE name = ?", group)
      .toArray()[0];
    return row?.committed ?? null;
  }

  commitOffset(group: string, offset: number, now: number): void {
    this.topicConfig();
    if (offset > this.maxOffset()) {
      throw badRequest(`offset ${offset} is beyond maxOffset ${this.maxOffset()}`);
    }
    this.ensureGroupRow(group, now);
    this.sql.exec(
      "UPDATE grp SET committed = ?, updated_at = ? WHERE name = ?",
      offset,
      now,
      group,
    );
  }

  /** The first offset stored at or after `timestamp`, or maxOffset when none is. */
  offsetForTimestamp(timestamp: number): number {
    const row = this.sql
      .exec<{ o: number | null }>(
        "SELECT msg_offset AS o FROM log WHERE stored_at >= ? ORDER BY stored_at, msg_offset LIMIT 1",
        timestamp,
      )
      .toArray()[0];
    return row?.o ?? this.maxOffset();
  }

  /**
   * Moves a group to `offset`, for both consumption modes: the committed pull
   * offset and the pop cursor. Outstanding receipts of the group end (their
   * messages are handed out again from the new position).
   */
  resetGroup(group: string, offset: number, now: number): number {
    this.topicConfig();
    const target = Math.min(Math.max(offset, this.minOffset()), this.maxOffset());
    this.ensureGroupRow(group, now);
    this.sql.exec(
      "UPDATE grp SET committed = ?, pop_next = ?, updated_at = ? WHERE name = ?",
      target,
      target,
      now,
      group,
    );
    this.sql.exec("DELETE FROM inflight WHERE grp = ?", group);
    return target;
  }

  // ---- receive (pop) -------------------------------------------------------

  private popCursor(group: string): number {
    const row = this.sql
      .exec<{ pop_next: number | null }>("SELECT pop_next FROM grp WHERE name = ?", group)
      .toArray()[0];
    // A new group starts at the earliest stored message: every group gets every message.
    return row?.pop_next ?? this.minOffset();
  }

  private logRow(offset: number): LogRow | undefined {
    return this.sql.exec<LogRow>("SELECT * FROM log WHERE msg_offset = ?", offset).toArray()[0];
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
    this.topicConfig();
    this.rememberGroup(group, now);
    const out: Claimed[] = [];
    const visibleAt = now + invisibleMs;

    // 1. Messages due again, oldest due first.
    const due = this.sql
      .exec<InflightRow>(
        `SELECT msg_offset, state, visible_at, deliveries, handle, sharding_key FROM inflight
         WHERE grp = ? AND state < 2 AND visible_at <= ? ORDER BY visible_at, msg_offset LIMIT ?`,
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
      const row = this.logRow(r.msg_offset);
      if (!row || (row.expire_at !== null && row.expire_at <= now) || !this.matches(row, filter)) {
        // An expired one is counted by stats(), once, however many groups pass it.
        this.sql.exec(
          "DELETE FROM inflight WHERE grp = ? AND msg_offset = ?",
          group.group,
          r.msg_offset,
        );
        continue;
      }
      const handle = this.newHandle();
      this.sql.exec(
        `UPDATE inflight SET state = 0, visible_at = ?, deliveries = deliveries + 1, handle = ?
         WHERE grp = ? AND msg_offset = ?`,
        visibleAt,
        handle,
        group.group,
        r.msg_offset,
      );
      out.push({ message: this.toMessage(row, r.deliveries), handle });
    }
    if (out.length >= max) {
      this.counters.delivered += out.length;
      this.saveCounters("expired", "delivered");
      return out;
    }

    // 2. New messages from the cursor.
    const start = Math.max(this.popCursor(group.group), this.minOffset());
    // Claims of an unordered group are written with one statement after the
    // scan; an orderly group's scan reads its own claims back, so they go in as taken.
    const taken: [number, string, string | null][] = [];
    const cursor = this.scanNew(group, start, max - out.length, filter, now, (row) => {
      const handle = this.newHandle();
      if (group.orderly) {
        this.sql.exec(
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
      out.push({ message: this.toMessage(row, 0), handle });
    });
    if (taken.length) {
      this.sql.exec(
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
    const stored = this.sql
      .exec<{ p: number | null }>("SELECT pop_next AS p FROM grp WHERE name = ?", group.group)
      .toArray()[0]?.p;
    if (stored !== cursor) {
      this.sql.exec("UPDATE grp SET pop_next = ? WHERE name = ?", cursor, group.group);
    }
    if (out.length) {
      this.counters.delivered += out.length;
      this.saveCounters("delivered");
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
      (row.expire_at === null || row.expire_at > now) && this.matches(row, filter);
    // Offsets handed out ahead of the cursor (by an orderly group, or one that
    // was orderly before its config changed): never handed out twice.
    const claimed = new Map<number, number>();
    for (const r of this.sql.exec<{ msg_offset: number; state: number }>(
      "SELECT msg_offset, state FROM inflight WHERE grp = ? AND msg_offset >= ?",
      group.group,
      start,
    )) {
      claimed.set(r.msg_offset, r.state);
    }
    // An orderly group's keys in flight or waiting to retry hold back their later messages.
    const blocked = new Set<string>();
    if (group.orderly) {
      for (const r of this.sql.exec<{ sharding_key: string }>(
        `SELECT DISTINCT sharding_key FROM inflight
         WHERE grp = ? AND state < 2 AND sharding_key IS NOT NULL`,
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
    for (const row of this.sql.exec<ScanRow>(
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
          this.sql.exec("DELETE FROM inflight WHERE grp = ? AND msg_offset = ?", group.group, off);
        }
      } else if (live(row)) {
        if (row.sharding_key !== null && blocked.has(row.sharding_key)) {
          heldAt = off;
          break;
        }
        const full = group.orderly ? this.logRow(off) : (row as LogRow);
        if (full) takeOne(full);
      }
      cursor = off + 1;
    }
    // Everything up to the end was read; the rest are gaps left by drops.
    if (heldAt === null) return read < BATCH.scan ? Math.max(cursor, this.maxOffset()) : cursor;
    if (taken >= room) return cursor;
    // Past the held message: candidates only, found by SQLite (not handed out, key not blocked).
    const candidates = this.sql
      .exec<ScanRow>(
        `SELECT ${SCAN_COLUMNS} FROM log WHERE msg_offset > ? AND msg_offset <= ?
           AND NOT EXISTS (SELECT 1 FROM inflight i WHERE i.grp = ? AND i.msg_offset = log.msg_offset)
           AND (sharding_key IS NULL OR sharding_key NOT IN (SELECT sharding_key FROM inflight
             WHERE grp = ? AND state < 2 AND sharding_key IS NOT NULL))
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
      const full = this.logRow(row.msg_offset);
      if (full) takeOne(full);
    }
    return cursor;
  }

  /** Whether a receive by `group` would hand out something now (bounded scan, claims nothing). */
  hasReceivable(group: string, filter: MessageFilter, now: number): boolean {
    const due = this.sql
      .exec(
        "SELECT 1 FROM inflight WHERE grp = ? AND state < 2 AND visible_at <= ? LIMIT 1",
        group,
        now,
      )
      .toArray();
    if (due.length) return true;
    const config = this.groupConfig(group);
    if (config?.orderly) {
      // The claim's own scan, writing nothing: a blocked key must not wake a waiter (it would spin).
      let found = false;
      const start = Math.max(this.popCursor(group), this.minOffset());
      this.scanNew(config, start, 1, filter, now, () => (found = true), true);
      return found;
    }
    return this.hasPullable(this.popCursor(group), filter, now);
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
    const config = this.groupConfig(group);
    const start = Math.max(from, this.popCursor(group), this.minOffset());
    if (!config?.orderly) return this.hasPullable(start, filter, now);
    const rows = this.sql.exec<ScanRow>(
      `SELECT ${SCAN_COLUMNS} FROM log WHERE msg_offset >= ?
         AND NOT EXISTS (SELECT 1 FROM inflight i WHERE i.grp = ? AND i.msg_offset = log.msg_offset)
         AND (sharding_key IS NULL OR sharding_key NOT IN (SELECT sharding_key FROM inflight
           WHERE grp = ? AND state < 2 AND sharding_key IS NOT NULL))
       ORDER BY msg_offset LIMIT ?`,
      start,
      group,
      group,
      BATCH.scan,
    );
    for (const row of rows) {
      if ((row.expire_at === null || row.expire_at > now) && this.matches(row, filter)) return true;
    }
    return false;
  }

  /** The in-flight row a receipt names, or null when it lapsed or was already used. */
  private receiptRow(group: string, ref: ReceiptRef, now: number): InflightRow | null {
    const r = this.sql
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
    for (const r of this.sql.exec<InflightRow>(
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
      return { ok: true };
    });
    if (done.length) {
      this.sql.exec(
        "DELETE FROM inflight WHERE grp = ? AND msg_offset IN (SELECT value FROM json_each(?))",
        group,
        JSON.stringify(done),
      );
    }
    if (ahead.length) {
      this.sql.exec(
        "UPDATE inflight SET state = 2 WHERE grp = ? AND msg_offset IN (SELECT value FROM json_each(?))",
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
    this.rememberGroup(group, now);
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
    this.sql.exec(
      "UPDATE inflight SET state = 1, visible_at = ?, handle = '' WHERE grp = ? AND msg_offset = ?",
      now + delay,
      group.group,
      r.msg_offset,
    );
  }

  private toDeadLetter(group: string, r: InflightRow, now: number): void {
    if (r.msg_offset >= this.popCursor(group)) {
      // Ahead of an orderly group's cursor: keep a settled marker, or the cursor would hand it out anew.
      this.sql.exec(
        "UPDATE inflight SET state = 2, handle = '' WHERE grp = ? AND msg_offset = ?",
        group,
        r.msg_offset,
      );
    } else {
      this.sql.exec("DELETE FROM inflight WHERE grp = ? AND msg_offset = ?", group, r.msg_offset);
    }
    this.sql.exec(
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
    this.sql.exec(
      "UPDATE inflight SET visible_at = ?, handle = ? WHERE grp = ? AND msg_offset = ?",
      now + invisibleMs,
      handle,
      group,
      r.msg_offset,
    );
    return handle;
  }

  /**
   * Turns receipts whose invisible time lapsed into retries (visible at once,
   * as the contract says) or dead letters. Returns how many it handled and
   * whether more remain.
   */
  lapseReceipts(now: number): { handled: number; more: boolean } {
    const rows = this.sql
      .exec<InflightRow & { grp: string }>(
        `SELECT grp, msg_offset, state, visible_at, deliveries, handle, sharding_key FROM inflight
         WHERE state = 0 AND visible_at <= ? ORDER BY visible_at LIMIT ?`,
        now,
        BATCH.lapsed,
      )
      .toArray();
    for (const r of rows) {
      const group = this.groupConfig(r.grp);
      const max = group?.maxReconsumeTimes ?? Limits.defaultMaxReconsumeTimes;
      if (exhausted(r.deliveries, max)) this.toDeadLetter(r.grp, r, now);
      else {
        this.sql.exec(
          "UPDATE inflight SET state = ?, handle = '' WHERE grp = ? AND msg_offset = ?",
          STATE_RETRY,
          r.grp,
          r.msg_offset,
        );
      }
    }
    return { handled: rows.length, more: rows.length === BATCH.lapsed };
  }

  /** The earliest future time a receipt lapses or a retry comes due. */
  nextVisibleAt(now: number): number | null {
    const lapsedNow = this.sql
      .exec("SELECT 1 FROM inflight WHERE state = 0 AND visible_at <= ? LIMIT 1", now)
      .toArray();
    if (lapsedNow.length) return now;
    const row = this.sql
      .exec<{ t: number | null }>(
        "SELECT min(visible_at) AS t FROM inflight WHERE state < 2 AND visible_at > ?",
        now,
      )
      .one();
    return row.t;
  }

  /** Groups with a retry due at or before `now` (their waiters should wake). */
  groupsWithDueRetries(now: number): string[] {
    return this.sql
      .exec<{ grp: string }>(
        "SELECT DISTINCT grp FROM inflight WHERE state = 1 AND visible_at <= ?",
        now,
      )
      .toArray()
      .map((r) => r.grp);
  }

  // ---- dead letters --------------------------------------------------------

  deadLetters(group: string, limit: number): Message[] {
    return this.sql
      .exec<LogRow & { reconsume_times: number }>(
        `SELECT log.*, dlq.reconsume_times FROM dlq JOIN log ON log.msg_offset = dlq.msg_offset
         WHERE dlq.grp = ? ORDER BY dlq.msg_offset LIMIT ?`,
        group,
        limit,
      )
      .toArray()
      .map((row) => this.toMessage(row, row.reconsume_times));
  }

  /** Takes dead letters (all, or those with the given msgIds) back to the group, reconsumeTimes 0. */
  resendDeadLetters(group: string, msgIds: string[] | null, now: number): string[] {
    const rows = this.sql
      .exec<{ msg_offset: number; msg_id: string; sharding_key: string | null }>(
        `SELECT dlq.msg_offset, log.msg_id, log.sharding_key FROM dlq
         JOIN log ON log.msg_offset = dlq.msg_offset WHERE dlq.grp = ?`,
        group,
      )
      .toArray()
      .filter((r) => msgIds === null || msgIds.includes(r.msg_id));
    for (const r of rows) {
      this.sql.exec("DELETE FROM dlq WHERE grp = ? AND msg_offset = ?", group, r.msg_offset);
      this.sql.exec(
        `INSERT OR REPLACE INTO inflight (grp, msg_offset, state, visible_at, deliveries, handle, sharding_key)
         VALUES (?, ?, 1, ?, 0, '', ?)`,
        group,
        r.msg_offset,
        now,
        r.sharding_key,
      );
    }
    return rows.map((r) => r.msg_id);
  }

  // ---- scheduled messages --------------------------------------------------

  nextScheduledAt(): number | null {
    return this.sql.exec<{ t: number | null }>("SELECT min(due_at) AS t FROM scheduled").one().t;
  }

  /**
   * Moves due scheduled messages into the log in due-time order, a bounded
   * batch per call. Idempotent: a moved message's timer row is gone, so an
   * alarm that fires twice moves nothing twice.
   */
  moveDue(now: number): { moved: number; more: boolean } {
    const config = this.topicConfig();
    const due = this.sql
      .exec<{ id: number; msg: string }>(
        "SELECT id, msg FROM scheduled WHERE due_at <= ? ORDER BY due_at, id LIMIT ?",
        now,
        BATCH.scheduled,
      )
      .toArray();
    // Nothing due (an early or repeated alarm): nothing to write, no commit.
    if (due.length === 0) return { moved: 0, more: false };
    // The timer rows read above, removed with one statement.
    this.sql.exec(
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
    this.bulk = bounded ? null : new BulkLogWriter(this.sql);
    let moved = 0;
    try {
      for (const { id, msg } of due) {
        const m = JSON.parse(msg) as NormalizedMessage;
        this.counters.scheduled--;
        if (m.expireAt !== null && m.expireAt <= now) {
          this.counters.expired++;
          this.sql.exec("DELETE FROM ids WHERE msg_id = ? AND sched_id = ?", m.msgId, id);
          continue;
        }
        if (this.writeLog(m, now, limits)) moved++;
      }
      this.bulk?.flush();
    } finally {
      this.bulk = null;
    }
    this.saveCounters(...COUNTER_KEYS);
    return { moved, more: due.length === BATCH.scheduled };
  }

  /**
   * Recalls a scheduled message not yet moved into the log. Answers what
   * happened rather than throwing, since the gateway asks every queue and
   * all but one are expected to say `unknown`.
   */
  recall(msgId: string): "recalled" | "delivered" | "unknown" {
    this.topicConfig();
    const row = this.sql
      .exec<{ msg_offset: number | null; sched_id: number | null }>(
        "SELECT msg_offset, sched_id FROM ids WHERE msg_id = ?",
        msgId,
      )
      .toArray()[0];
    if (!row) return "unknown";
    // Neither in the log nor waiting: a scheduled message a purge removed.
    if (row.sched_id === null) return row.msg_offset === null ? "unknown" : "delivered";
    this.sql.exec("DELETE FROM scheduled WHERE id = ?", row.sched_id);
    this.sql.exec("DELETE FROM ids WHERE msg_id = ?", msgId);
    this.counters.scheduled--;
    this.saveCounters("scheduled");
    return "recalled";
  }

  // ---- retention, purge ----------------------------------------------------

  oldestStoredAt(): number | null {
    const row = this.sql
      .exec<{ t: number | null }>("SELECT stored_at AS t FROM log ORDER BY msg_offset LIMIT 1")
      .toArray()[0];
    return row?.t ?? null;
  }

  get lastSweep(): number {
    return this.counters.last_sweep;
  }

  /** Deletes messages past retention, a bounded batch per call. */
  sweepRetention(now: number): { deleted: number; more: boolean } {
    const config = this.topicConfig();
    const cutoff = retentionCutoff(now, config.retentionMs);
    const rows = this.sql
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
      this.counters.expired += this.countExpired(now, last);
      this.sql.exec("DELETE FROM log WHERE msg_offset <= ?", last);
      this.sql.exec("DELETE FROM msg_key WHERE msg_offset <= ?", last);
      this.sql.exec("DELETE FROM inflight WHERE msg_offset <= ?", last);
      this.sql.exec("DELETE FROM dlq WHERE msg_offset <= ?", last);
      for (const r of rows) {
        this.counters.messages--;
        this.counters.bytes -= r.size;
      }
    }
    // msgIds are kept for the longer of retention and the dedup window. Both
    // deletes are bounded like the log's (a burst of a million sends expires
    // all at once a day later); what is left goes at the next sweep.
    const idCutoff = now - Math.max(config.retentionMs, Limits.dedupWindowMs);
    this.sql.exec(
      `DELETE FROM ids WHERE msg_id IN
         (SELECT msg_id FROM ids WHERE stored_at < ? AND sched_id IS NULL ORDER BY stored_at LIMIT ?)`,
      idCutoff,
      BATCH.retention,
    );
    this.sql.exec(
      "DELETE FROM half WHERE id IN (SELECT id FROM half WHERE state <> 0 AND ended_at < ? LIMIT ?)",
      now - Limits.dedupWindowMs,
      BATCH.retention,
    );
    const more = rows.length === BATCH.retention;
    // Only a finished sweep starts the sweep interval: a partial one must go
    // on at once, or retention would fall behind any stream faster than one
    // batch per interval.
    if (!more) this.counters.last_sweep = now;
    this.saveCounters(...COUNTER_KEYS);
    return { deleted: rows.length, more };
  }

  /** Deletes every stored message (and pending schedule), keeping config and moving group positions up. */
  purge(now: number): { minOffset: number } {
    this.topicConfig();
    this.sql.exec("DELETE FROM log");
    this.sql.exec("DELETE FROM msg_key");
    this.sql.exec("DELETE FROM scheduled");
    // msgIds stay for the dedup window: a producer retrying a send from before
    // the purge must not bring the message back. (The sweep removes them later.)
    this.sql.exec("UPDATE ids SET sched_id = NULL WHERE sched_id IS NOT NULL");
    this.sql.exec("DELETE FROM inflight");
    this.sql.exec("DELETE FROM dlq");
    this.counters.messages = 0;
    this.counters.bytes = 0;
    this.counters.scheduled = 0;
    const min = this.counters.next_offset;
    this.sql.exec(
      `UPDATE grp SET committed = CASE WHEN committed IS NULL THEN NULL ELSE max(committed, ?) END,
       pop_next = CASE WHEN pop_next IS NULL THEN NULL ELSE max(pop_next, ?) END, updated_at = ?`,
      min,
      min,
      now,
    );
    this.saveCounters(...COUNTER_KEYS);
    return { minOffset: min };
  }

  // ---- stats and query -----------------------------------------------------

  /** Stored messages past their expireAt (at or below offset `upTo`): never delivered, still counted. */
  private countExpired(now: number, upTo = Number.MAX_SAFE_INTEGER): number {
    return this.sql
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
      queue: this.queue,
      minOffset: this.minOffset(),
      maxOffset: this.maxOffset(),
      messages: this.counters.messages,
      bytes: this.counters.bytes,
      scheduled: this.counters.scheduled,
      dropped: this.counters.dropped,
      expired: this.counters.expired + this.countExpired(now),
      sent: this.counters.sent,
      delivered: this.counters.delivered,
    };
  }

  groupStats(group: string): GroupQueueStats {
    const maxOffset = this.maxOffset();
    const minOffset = this.minOffset();
    const g = this.sql
      .exec<{ committed: number | null; pop_next: number | null }>(
        "SELECT committed, pop_next FROM grp WHERE name = ?",
        group,
      )
      .toArray()[0];
    const counts = this.sql
      .exec<{ inflight: number; retrying: number; lowest: number | null }>(
        `SELECT sum(state = 0) AS inflight, sum(state = 1) AS retrying,
           min(CASE WHEN state < 2 THEN msg_offset END) AS lowest FROM inflight WHERE grp = ?`,
        group,
      )
      .one();
    const dlq = this.sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM dlq WHERE grp = ?", group)
      .one().n;
    let offset: number;
    if (g?.committed !== null && g?.committed !== undefined) offset = g.committed;
    else if (g?.pop_next !== null && g?.pop_next !== undefined) {
      offset = Math.min(g.pop_next, counts.lowest ?? g.pop_next);
    } else offset = minOffset;
    const stats: GroupQueueStats = {
      queue: this.queue,
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

  /** A message by id with each known group's status, or null. */
  findById(msgId: string): (Message & { groups: Record<string, GroupMessageStatus> }) | null {
    this.topicConfig();
    const id = this.sql
      .exec<{ msg_offset: number | null }>("SELECT msg_offset FROM ids WHERE msg_id = ?", msgId)
      .toArray()[0];
    if (!id || id.msg_offset === null) return null;
    const row = this.logRow(id.msg_offset);
    if (!row) return null;
    const groups: Record<string, GroupMessageStatus> = {};
    const off = row.msg_offset;
    for (const g of this.sql.exec<{
      name: string;
      committed: number | null;
      pop_next: number | null;
    }>("SELECT name, committed, pop_next FROM grp")) {
      const dlq = this.sql
        .exec("SELECT 1 FROM dlq WHERE grp = ? AND msg_offset = ?", g.name, off)
        .toArray().length;
      const inf = this.sql
        .exec<{ state: number }>(
          "SELECT state FROM inflight WHERE grp = ? AND msg_offset = ?",
          g.name,
          off,
        )
        .toArray()[0];
      if (dlq) groups[g.name] = "dlq";
      else if (inf)
        groups[g.name] = inf.state === 0 ? "inflight" : inf.state === 1 ? "retrying" : "consumed";
      else if (g.committed !== null) groups[g.name] = off < g.committed ? "consumed" : "pending";
      else if (g.pop_next !== null) groups[g.name] = off < g.pop_next ? "consumed" : "pending";
      else groups[g.name] = "pending";
    }
    return { ...this.toMessage(row), groups };
  }

  findByKey(key: string, limit: number): Message[] {
    this.topicConfig();
    return this.sql
      .exec<LogRow>(
        `SELECT log.* FROM msg_key JOIN log ON log.msg_offset = msg_key.msg_offset
         WHERE msg_key.key = ? ORDER BY msg_key.msg_offset LIMIT ?`,
        key,
        limit,
      )
      .toArray()
      .map((r) => this.toMessage(r));
  }

  findByTime(from: number, to: number, limit: number): Message[] {
    this.topicConfig();
    return this.sql
      .exec<LogRow>(
        "SELECT * FROM log WHERE stored_at >= ? AND stored_at < ? ORDER BY stored_at, msg_offset LIMIT ?",
        from,
        to,
        limit,
      )
      .toArray()
      .map((r) => this.toMessage(r));
  }

  // ---- transactions (half messages) ----------------------------------------

  /**
   * Stores a half message and returns its id, the address a txId carries.
   * Ids are never reused, even after ended transactions are swept or the
   * topic is deleted and made again (they start from `now` × 1000), so a
   * late commit of an old txId can never end a newer transaction.
   */
  prepare(
    m: NormalizedMessage,
    producerGroup: string,
    check: TransactionCheckConfig,
    now: number,
  ): number {
    this.topicConfig();
    const checkAt = check.checkUrl ? now + check.checkAfterMs : null;
    const last =
      this.sql.exec<{ id: number | null }>("SELECT max(id) AS id FROM half").one().id ?? 0;
    return this.sql
      .exec<{ id: number }>(
        `INSERT INTO half (id, msg_id, producer_group, msg, created_at, check_at, checks, state)
         VALUES (?, ?, ?, ?, ?, ?, 0, 0) RETURNING id`,
        Math.max(last + 1, now * 1000),
        m.msgId,
        producerGroup,
        JSON.stringify({ message: m, check }),
        now,
        checkAt,
      )
      .one().id;
  }

  half(id: number): HalfRow | undefined {
    return this.sql.exec<HalfRow>("SELECT * FROM half WHERE id = ?", id).toArray()[0];
  }

  /** Ends a half message: commit appends it to the log once; rollback discards it. */
  endTransaction(
    id: number,
    commit: boolean,
    now: number,
    reason: string,
  ): { status: "committed" | "rolledBack"; offset: number | null } {
    const h = this.half(id);
    if (!h) throw new EdgemqError("TRANSACTION_NOT_FOUND", "no such transaction");
    const want = commit ? HALF_COMMITTED : HALF_ROLLED_BACK;
    const status = commit ? "committed" : "rolledBack";
    if (h.state === want) return { status, offset: h.msg_offset };
    if (h.state !== HALF_OPEN) {
      throw new EdgemqError(
        "TRANSACTION_ENDED",
        `transaction already ${h.state === HALF_COMMITTED ? "committed" : "rolled back"}`,
      );
    }
    let offset: number | null = null;
    if (commit) {
      const { message } = JSON.parse(h.msg) as { message: NormalizedMessage };
      const [result] = this.append([{ ...message, deliverAt: null, clientMsgId: false }], now);
      offset = result?.offset ?? null;
    }
    this.sql.exec(
      "UPDATE half SET state = ?, msg_offset = ?, ended_at = ?, end_reason = ?, check_at = NULL WHERE id = ?",
      want,
      offset,
      now,
      reason,
      id,
    );
    return { status, offset };
  }

  openHalves(limit: number): HalfRow[] {
    return this.sql
      .exec<HalfRow>("SELECT * FROM half WHERE state = 0 ORDER BY id LIMIT ?", limit)
      .toArray();
  }

  nextCheckAt(): number | null {
    return this.sql
      .exec<{ t: number | null }>("SELECT min(check_at) AS t FROM half WHERE state = 0")
      .one().t;
  }

  /**
   * Claims due check-backs: each is held past its check's timeout before the
   * check runs, so a crash or a second alarm never checks it twice at once.
   */
  claimDueChecks(now: number): HalfRow[] {
    const rows = this.sql
      .exec<HalfRow>(
        "SELECT * FROM half WHERE state = 0 AND check_at <= ? ORDER BY check_at LIMIT ?",
        now,
        BATCH.checks,
      )
      .toArray();
    for (const r of rows) {
      this.sql.exec(
        "UPDATE half SET checks = checks + 1, check_at = ? WHERE id = ?",
        checkLeaseUntil(now),
        r.id,
      );
      r.checks += 1;
    }
    return rows;
  }

  /** After an undecided check answered at `now`: the next one comes the producer group's interval later. */
  deferCheck(id: number, now: number): void {
    const h = this.half(id);
    if (!h || h.state !== HALF_OPEN) return;
    const { check } = JSON.parse(h.msg) as { check: TransactionCheckConfig };
    this.sql.exec("UPDATE half SET check_at = ? WHERE id = ?", now + check.checkIntervalMs, id);
  }
}
