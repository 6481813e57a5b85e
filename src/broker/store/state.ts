/**
 * What every part of a shard's store shares: the SQLite handle, the counters
 * mirrored from `meta`, the topic and group configs, and the row helpers
 * (log row to message, filter match) the log, consumption and queries use.
 */
import { type AnswerBytes, ByteBudget, answerBytes } from "../../protocol/encoded-size.ts";
import { EdgemqError } from "../../protocol/errors.ts";
import type { MessageFilter } from "../../protocol/filter.ts";
import type { GroupConfig, Message, TopicConfig } from "../../protocol/types.ts";
import { BulkLogWriter } from "./bulk-writer.ts";
import { WriteEffects } from "./effects.ts";
import { Reservations } from "./reservations.ts";
import { migrate } from "../../storage/migrations.ts";
import { MsgIds } from "./msg-ids.ts";
import { POLICY_INDEXES, SHARD_MIGRATIONS } from "./schema.ts";

/** A log row as SQLite returns it. */
export interface LogRow {
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
  /** Trace context (schema step 2). */
  traceparent: string | null;
  tracestate: string | null;
  [k: string]: SqlStorageValue;
}

/**
 * A shard's answer to a query or a DLQ list: messages in the shard's order,
 * cut by count or by bytes, as the gateway merges it with other shards'.
 */
export interface MessagePage {
  messages: Message[];
  /** What each message takes in an answer, in the same order. */
  sizes: number[];
  /**
   * The first message left out because the byte budget was spent (its store
   * time and offset: where the answer stops), or null when it was not cut by bytes.
   */
  next: { storedAt: number; queue: number; offset: number } | null;
}

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
  /** Open half messages and their bytes: they hold room under the backlog bounds. */
  half_open: number;
  half_bytes: number;
  /** Rows of timer work set aside after failing again and again (see due-work.ts). */
  parked: number;
  /**
   * A purge's marks (see log.ts `purge`): log offsets below `purge_floor`,
   * scheduled ids below `sched_floor` and half messages prepared before
   * `half_floor` are gone, though the alarm may still be deleting them.
   */
  purge_floor: number;
  sched_floor: number;
  half_floor: number;
  /** 1 while the alarm still has rows below a purge's marks to delete. */
  purge_pending: number;
}

export const COUNTER_KEYS: (keyof Counters)[] = [
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
  "half_open",
  "half_bytes",
  "parked",
  "purge_floor",
  "sched_floor",
  "half_floor",
  "purge_pending",
];

/**
 * Whether a config updated at `a` is older than one updated at `b`. A config
 * without an update time (a group first seen without its config) is older
 * than any that has one.
 */
function isOlder(a: number | undefined, b: number | undefined): boolean {
  return (a ?? -Infinity) < (b ?? -Infinity);
}

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

/** The state one shard's store modules share (one per ShardStore). */
export class StoreState {
  counters!: Counters;
  config: TopicConfig | null = null;
  queue = 0;
  groups = new Map<string, GroupConfig>();
  /** The delivered count as last saved in meta. */
  savedDelivered = 0;
  /** Set while an append batch defers its row writes (see bulk-writer.ts). */
  bulk: BulkLogWriter | null = null;
  /** What the writes since the last commit call for (see effects.ts); every module records here. */
  readonly effects = new WriteEffects();
  /** Room held for parts of batches that span queues (in memory; see reservations.ts). */
  readonly reservations = new Reservations();
  /** The msgId index, per sender (msg-ids.ts). */
  readonly ids: MsgIds;

  /**
   * @param transact runs a function in one SQLite transaction
   *   (`ctx.storage.transactionSync`): schema steps apply all or none.
   */
  constructor(
    readonly sql: SqlStorage,
    private readonly transact: <T>(fn: () => T) => T = (fn) => fn(),
  ) {
    this.ids = new MsgIds(sql);
    this.init();
  }

  /**
   * Runs `fn` in a transaction of its own, nested in the caller's (a
   * savepoint): a failure undoes `fn`'s writes only. The in-memory counters
   * are put back too.
   */
  nested<T>(fn: () => T): T {
    const counters = { ...this.counters };
    const effects = this.effects.snapshot();
    try {
      return this.transact(fn);
    } catch (e) {
      this.counters = counters;
      this.effects.restore(effects);
      this.bulk = null;
      throw e;
    }
  }

  /** Brings the schema to the current version (a no-op when it is) and loads counters and config. */
  init(): void {
    this.transact(() => migrate(this.sql, SHARD_MIGRATIONS, Date.now()));
    // A shard opened anew (or its data deleted) holds no room for anyone.
    this.reservations.clear();
    this.reload();
  }

  /** Reloads the in-memory mirror from the tables (after a transaction rolled back). */
  reload(): void {
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

  /** The topic config, or TOPIC_NOT_FOUND when this shard was never configured (or deleted). */
  topicConfig(): TopicConfig {
    if (!this.config) throw new EdgemqError("TOPIC_NOT_FOUND", "topic not found");
    return this.config;
  }

  get queueId(): number {
    return this.queue;
  }

  /**
   * Takes a topic config from the registry. Only a newer one is taken: many
   * gateway isolates fan configs out, and one that read the registry before
   * the latest update may arrive last. (Equal times are the same update,
   * fanned out again: taken, so a partly configured topic completes.)
   */
  configure(config: TopicConfig, queue: number): void {
    if (this.config && isOlder(config.updatedAt, this.config.updatedAt)) return;
    this.config = config;
    this.queue = queue;
    this.setMeta("config", JSON.stringify(config));
    this.setMeta("queue", queue);
    const index = POLICY_INDEXES[config.overflowPolicy as keyof typeof POLICY_INDEXES];
    if (index) this.sql.exec(index);
    // Retention may have changed, and a new shard's timers start now.
    this.effects.rearm = true;
  }

  /**
   * Records a consumer group's config snapshot (used by alarms, which have no
   * request). Only a newer snapshot replaces the one recorded: a gateway
   * isolate may still hold an older one in its cache for up to 30 s, and
   * settings must not flip back and forth while the caches catch up.
   * Answers the snapshot to act on: the newer of the two.
   */
  rememberGroup(group: GroupConfig, now: number): GroupConfig {
    const known = this.groups.get(group.group);
    if (known && !isOlder(known.updatedAt, group.updatedAt)) return known;
    this.groups.set(group.group, group);
    this.sql.exec(
      `INSERT INTO grp (name, config, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`,
      group.group,
      JSON.stringify(group),
      now,
    );
    return group;
  }

  groupConfig(name: string): GroupConfig | undefined {
    return this.groups.get(name);
  }

  setMeta(k: string, v: SqlStorageValue): void {
    this.sql.exec("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", k, v);
  }

  /** Saves counters with one statement (an append saves eight). */
  saveCounters(...keys: (keyof Counters)[]): void {
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

  /**
   * The offset below which a purge removed everything (0 when none did).
   * Rows below it may still be stored while the alarm deletes them in
   * bounded steps; every read treats them as gone. Where the floor only
   * filters, queries write it `+msg_offset >= ?`: the unary plus keeps
   * SQLite from trading the index the query was written for (by due time,
   * by key, by deadline) for a range over the primary key.
   */
  get floor(): number {
    return this.counters.purge_floor;
  }

  /** First offset still stored (inclusive). */
  minOffset(): number {
    const row = this.sql
      .exec<{ o: number | null }>(
        "SELECT min(msg_offset) AS o FROM log WHERE msg_offset >= ?",
        this.floor,
      )
      .one();
    return row.o ?? this.counters.next_offset;
  }

  /**
   * What holds room under the backlog bounds at `now`: stored messages, open
   * half messages (which will be stored when committed) and room reserved
   * for parts of batches that span queues (see reservations.ts).
   */
  held(now: number): { messages: number; bytes: number } {
    const c = this.counters;
    const r = this.reservations.total(now);
    return {
      messages: c.messages + c.half_open + r.messages,
      bytes: c.bytes + c.half_bytes + r.bytes,
    };
  }

  /** Next offset to be written (exclusive). */
  maxOffset(): number {
    return this.counters.next_offset;
  }

  /** A log row as the contract's Message. */
  toMessage(row: LogRow, reconsumeTimes = 0): Message {
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
    if (typeof row.traceparent === "string") m.traceparent = row.traceparent;
    if (typeof row.tracestate === "string") m.tracestate = row.tracestate;
    return m;
  }

  /**
   * Turns rows (read lazily, in answer order) into a {@link MessagePage}
   * within `bytes`: rows past the budget are never read.
   */
  page(rows: Iterable<LogRow & { reconsume_times?: number }>, bytes: AnswerBytes): MessagePage {
    const budget = new ByteBudget(bytes);
    const out: MessagePage = { messages: [], sizes: [], next: null };
    for (const row of rows) {
      const size = this.answerBytes(row);
      if (!budget.take(size)) {
        out.next = { storedAt: row.stored_at, queue: this.queue, offset: row.msg_offset };
        break;
      }
      out.messages.push(this.toMessage(row, row.reconsume_times ?? 0));
      out.sizes.push(size);
    }
    return out;
  }

  /** The bytes a log row takes in an answer (counted against its byte budget). */
  answerBytes(row: LogRow): number {
    return answerBytes({
      msgId: row.msg_id,
      body: row.body,
      base64: row.base64 === 1,
      size: row.size,
      tag: row.tag,
      keys: row.keys,
      props: row.props,
      shardingKey: row.sharding_key,
    });
  }

  /** Whether a row passes a consumer's filter. */
  matches(row: Pick<LogRow, "tag" | "props">, filter: MessageFilter): boolean {
    if (filter.matchesAll) return true;
    return filter.matches({
      tag: row.tag,
      properties: row.props === null ? null : (JSON.parse(row.props) as Record<string, string>),
    });
  }

  /** The whole log row at `offset`, if still stored (and not purged). */
  logRow(offset: number): LogRow | undefined {
    if (offset < this.floor) return undefined;
    return this.sql.exec<LogRow>("SELECT * FROM log WHERE msg_offset = ?", offset).toArray()[0];
  }
}
