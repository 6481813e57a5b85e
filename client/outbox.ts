/**
 * The offline outbox: a producer's messages are written to IndexedDB before
 * any network call, then sent by a separate drain step, so a message survives
 * a lost network, a reload and a crashed tab.
 *
 * Guarantees, and how they are kept:
 * - Nothing is lost: `send` resolves only after the write transaction
 *   (`durability: "strict"`, so the browser has flushed it to disk) has
 *   committed. A record leaves the outbox only once the broker has answered
 *   for it (stored, scheduled, duplicate or expired), or has refused it for
 *   good with a 4xx: then an `error` event reports it, since it could never
 *   succeed. Network failures, 5xx, 408, 429, 401 and 403 keep it (a 401/403
 *   may be an expired token that the app will refresh).
 * - Nothing is stored twice: every record carries the msgId it was given
 *   before the first attempt. A record that was delivered but not yet
 *   removed (a crash between the two) is sent again on the next drain and the
 *   broker answers `duplicate`; the msgId index also refuses to store the same
 *   message twice on this device.
 * - Order per sharding key: records carry an auto-increment sequence number;
 *   the drain sends them in sequence order, one request at a time. A record
 *   that fails and is kept holds back the later records of its *lane* (same
 *   topic, pinned queue and sharding key; a message without a sharding key
 *   is a lane of its own, as the broker promises no order for it), so no
 *   later record of that lane overtakes it.
 * - One stuck record does not block the others. A failure that only some
 *   messages meet (507 `QUEUE_FULL`/`STORAGE_FULL` of one queue, a 500) holds
 *   back just the lanes that met it: a batch that fails so is split by lane
 *   (halving, so a few stuck lanes among many cost a few requests) until the
 *   failing lanes are found, and the others are sent. A 403 holds back its
 *   topic. Held lanes are tried again with their own backoff while other
 *   messages keep flowing; each failed try is an `error` event (`kept: true`,
 *   the oldest held `msgId`, `attempts`, `retryAt`), and the records stay in
 *   `pending()` / `list()`. Failures every request would meet (no network,
 *   401, 408, 429, 502–504) stop the whole drain until its backoff ends.
 * - Bounded: at most `maxMessages` records (default 10 000). When full, the
 *   default overflow choice `reject` makes `send` throw an EdgemqError
 *   `QUEUE_FULL` so the app knows the message was not taken; `drop-oldest`
 *   evicts the oldest records instead and reports each through an `error`
 *   event. Nothing ever vanishes silently.
 *
 * Draining starts on construction (so messages left by the previous page
 * load go out), shortly after each send, on the window's `online` event, and
 * after failures with exponential backoff.
 *
 * Events (all {@link EdgemqEvent}s):
 * - `queued`: detail {@link OutboxRecordInfo}, a message was stored.
 * - `sent`: detail `{ msgId, topic, result }`, the broker took it; it was removed.
 * - `error`: detail {@link OutboxErrorDetail}: a send attempt failed
 *   (`kept: true`, it will be retried) or a message was dropped (`kept: false`).
 * - `drained`: detail `{ sent, dropped }`, a drain emptied the outbox.
 */
import { type DBSchema, type IDBPDatabase, openDB } from "idb";
import { EdgemqError } from "../src/protocol/errors.ts";
import type { MessageInput, SendResult } from "../src/protocol/types.ts";
import { type BackoffOptions, backoffDelay } from "./backoff.ts";
import { EdgemqEvent } from "./events.ts";
import { hasIndexedDb } from "./offset-store.ts";
import type { OutgoingMessage, ProducerSendResult } from "./message.ts";
import { httpStatusOf, isNetworkError, isRetryable } from "./transport.ts";

/** What to do with a new message when the outbox is full. */
export type OutboxOverflow = "reject" | "drop-oldest";

/** Configuration of a producer's outbox. */
export interface OutboxOptions {
  /** IndexedDB database name; producers sharing it share the outbox. Default `edgemq-outbox`. */
  name?: string;
  /** Most messages held. Default 10 000. */
  maxMessages?: number;
  /**
   * When full: `reject` (default) throws `QUEUE_FULL` from `send`, so the
   * caller still holds the message; `drop-oldest` evicts the oldest records,
   * each reported by an `error` event.
   */
  overflow?: OutboxOverflow;
  /** Messages per request while draining. Default 500. */
  maxBatchMessages?: number;
  /** Wait after a send before draining, so concurrent sends share a request. Default 5 ms. */
  lingerMs?: number;
  /** Spacing of drain attempts after failures. Default 1 s doubling up to 60 s. */
  backoff?: BackoffOptions;
  /**
   * Where `online` events fire. Default: the global object when it is a
   * window-like EventTarget (browsers), else none.
   */
  onlineEvents?: EventTarget | null;
  /** Whether the network is up. Default: `navigator.onLine !== false`. */
  isOnline?: () => boolean;
}

/** A stored outbox record. */
export interface OutboxRecord {
  /** Auto-increment sequence number: the send order. */
  seq?: number;
  msgId: string;
  topic: string;
  /** Pinned queue, or null. */
  queue: number | null;
  message: MessageInput & { msgId: string };
  size: number;
  queuedAt: number;
}

/** Detail of `queued` events. */
export interface OutboxRecordInfo {
  msgId: string;
  topic: string;
  seq: number;
}

/** Detail of `error` events. */
export interface OutboxErrorDetail {
  error: unknown;
  /** true: the message(s) stay and will be retried. false: dropped for good. */
  kept: boolean;
  /**
   * The message concerned, when the error is about one message or one lane
   * (for a held lane: its oldest message, which the lane's later ones wait for).
   */
  msgId?: string;
  topic?: string;
  message?: MessageInput;
  /** Kept errors of one lane or topic: failed tries in a row, this one included. */
  attempts?: number;
  /** Kept errors of one lane or topic: when its messages are tried next (epoch ms). */
  retryAt?: number;
}

/** Sends one batch for the outbox, once (the outbox does its own retrying). */
export type OutboxSendFn = (
  topic: string,
  queue: number | undefined,
  messages: (MessageInput & { msgId: string })[],
) => Promise<SendResult[]>;

interface OutboxSchema extends DBSchema {
  messages: {
    key: number;
    value: OutboxRecord;
    indexes: { msgId: string };
  };
}

interface Waiter {
  resolve(value: ProducerSendResult): void;
  reject(error: unknown): void;
}

/**
 * "held": everything left is held back by lanes in their backoff; "failed":
 * a failure that every request would meet stopped the pass.
 */
type PassOutcome = "empty" | "held" | "failed" | "offline" | "closed";

/** How far a kept failure reaches. */
type FailureScope = "all" | "topic" | "records";

/** A lane or topic held back after a kept failure. */
interface Hold {
  until: number;
  attempts: number;
}

interface PassStats {
  sent: number;
  dropped: number;
}

const STORE = "messages";

function defaultOnlineTarget(): EventTarget | null {
  const g = globalThis as unknown as {
    navigator?: { onLine?: unknown };
    addEventListener?: unknown;
  };
  // Only where the platform reports connectivity (browsers): Workers have a
  // global addEventListener too, for other events.
  return typeof g.navigator?.onLine === "boolean" && typeof g.addEventListener === "function"
    ? (globalThis as unknown as EventTarget)
    : null;
}

function defaultIsOnline(): boolean {
  return (
    (globalThis as unknown as { navigator?: { onLine?: unknown } }).navigator?.onLine !== false
  );
}

/** Keeps a 4xx that may heal (expired token, missing permission granted later) instead of dropping. */
function keeps(error: unknown): boolean {
  if (isRetryable(error)) return true;
  if (error instanceof EdgemqError) {
    const s = httpStatusOf(error);
    return s === 401 || s === 403;
  }
  // Not an answer from the broker at all (a bug, a storage error): keep.
  return true;
}

/**
 * What a kept failure says about other requests. No answer, 401 (the token),
 * 408, 429 (the token's rate) and 502–504 (the gateway) meet every request:
 * stop the drain. 403 is the token's permission for this topic. 507 (one
 * queue's bound or one shard's storage) and 500 belong to the messages sent.
 */
function failureScope(error: unknown): FailureScope {
  if (!(error instanceof EdgemqError) || isNetworkError(error)) return "all";
  const s = httpStatusOf(error);
  if (s === 403) return "topic";
  if (s === 507 || s === 500) return "records";
  return "all";
}

/** Records that must keep their relative order share a lane. */
function laneOf(r: OutboxRecord): string {
  const key = r.message.shardingKey;
  return `${r.topic}\u0000${r.queue ?? ""}\u0000${key === undefined ? `m:${r.msgId}` : `k:${key}`}`;
}

/** The IndexedDB outbox of a {@link Producer}. Use `producer.outbox`. */
export class Outbox extends EventTarget {
  /** The database name. */
  readonly name: string;
  readonly #send: OutboxSendFn;
  readonly #maxMessages: number;
  readonly #overflow: OutboxOverflow;
  readonly #maxBatch: number;
  readonly #lingerMs: number;
  readonly #backoff: BackoffOptions;
  readonly #onlineTarget: EventTarget | null;
  readonly #isOnline: () => boolean;
  readonly #db: Promise<IDBPDatabase<OutboxSchema>>;
  readonly #waiters = new Map<string, Waiter[]>();
  /** Lanes (see laneOf) and topics held back after kept failures. In memory: a reload tries all again. */
  readonly #holds = new Map<string, Hold>();
  #draining: Promise<void> | undefined;
  #again = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = 0;
  #attempt = 0;
  #closed = false;
  readonly #onOnline = () => {
    this.#attempt = 0;
    this.#schedule(0);
  };

  constructor(send: OutboxSendFn, options: OutboxOptions = {}) {
    super();
    this.name = options.name ?? "edgemq-outbox";
    this.#send = send;
    this.#maxMessages = Math.max(1, options.maxMessages ?? 10_000);
    this.#overflow = options.overflow ?? "reject";
    this.#maxBatch = Math.min(1000, Math.max(1, options.maxBatchMessages ?? 500));
    this.#lingerMs = options.lingerMs ?? 5;
    this.#backoff = { baseMs: 1000, maxMs: 60_000, ...options.backoff };
    this.#onlineTarget =
      options.onlineEvents === undefined ? defaultOnlineTarget() : options.onlineEvents;
    this.#isOnline = options.isOnline ?? defaultIsOnline;
    if (!hasIndexedDb()) {
      throw new EdgemqError("BAD_REQUEST", "the outbox needs IndexedDB, which this runtime lacks");
    }
    this.#db = openDB<OutboxSchema>(this.name, 1, {
      upgrade(db) {
        const store = db.createObjectStore(STORE, { keyPath: "seq", autoIncrement: true });
        store.createIndex("msgId", "msgId", { unique: true });
      },
    });
    // Kept as a handled promise so an open failure surfaces on use, not as
    // an unhandled rejection.
    this.#db.catch(() => {});
    this.#onlineTarget?.addEventListener("online", this.#onOnline);
    // Messages left by an earlier page load go out now.
    this.#schedule(0);
  }

  /** Number of messages waiting in the outbox. */
  async pending(): Promise<number> {
    const db = await this.#db;
    return db.count(STORE);
  }

  /** The waiting records in send order (for display; at most `limit`). */
  async list(limit = 100): Promise<OutboxRecord[]> {
    const db = await this.#db;
    return db.getAll(STORE, undefined, limit);
  }

  /**
   * Stores messages, then has them sent. Resolves with each message's
   * broker result, or `queued` when the network is down or the broker is
   * unavailable (the message stays and goes later). Rejects with
   * `QUEUE_FULL` when the outbox is full with overflow `reject` (nothing of
   * this call was stored), or with the broker's error when it refused a
   * message for good (the message has left the outbox).
   */
  async enqueue(items: OutgoingMessage[]): Promise<ProducerSendResult[]> {
    if (this.#closed) throw new EdgemqError("BAD_REQUEST", "the producer is closed");
    // Waiters exist before the write commits, so a drain started by another
    // send cannot deliver the answer to nobody.
    const results = items.map((i) => this.#wait(i.message.msgId));
    try {
      await this.#store(items);
    } catch (e) {
      for (const i of items) this.#settle(i.message.msgId, (w) => w.reject(e));
      await Promise.allSettled(results);
      throw e;
    }
    this.#schedule(this.#lingerMs);
    return Promise.all(results);
  }

  /**
   * Drains now, held lanes included; resolves when this drain ends (outbox
   * empty, or failures that keep messages).
   */
  drain(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#attempt = 0;
    this.#holds.clear();
    if (this.#draining) {
      this.#again = true;
      return this.#draining;
    }
    this.#clearTimer();
    return this.#run();
  }

  /** Stops draining and closes the database. Messages stay stored for the next producer. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimer();
    this.#onlineTarget?.removeEventListener("online", this.#onOnline);
    await this.#draining;
    this.#settleAllQueued();
    try {
      (await this.#db).close();
    } catch {
      // Never opened: nothing to close.
    }
  }

  #wait(msgId: string): Promise<ProducerSendResult> {
    return new Promise((resolve, reject) => {
      const list = this.#waiters.get(msgId) ?? [];
      list.push({ resolve, reject });
      this.#waiters.set(msgId, list);
    });
  }

  #settle(msgId: string, how: (w: Waiter) => void): void {
    const list = this.#waiters.get(msgId);
    if (!list) return;
    this.#waiters.delete(msgId);
    for (const w of list) how(w);
  }

  #settleAllQueued(): void {
    for (const msgId of [...this.#waiters.keys()]) {
      this.#settle(msgId, (w) => w.resolve({ status: "queued", msgId }));
    }
  }

  /** Writes records in one strict transaction, enforcing the bound and msgId uniqueness. */
  async #store(items: OutgoingMessage[]): Promise<void> {
    const db = await this.#db;
    const tx = db.transaction(STORE, "readwrite", { durability: "strict" });
    const store = tx.objectStore(STORE);
    const byId = store.index("msgId");
    const fresh: OutgoingMessage[] = [];
    const seen = new Set<string>();
    for (const item of items) {
      const id = item.message.msgId;
      if (seen.has(id) || (await byId.getKey(id)) !== undefined) continue;
      seen.add(id);
      fresh.push(item);
    }
    const count = await store.count();
    const excess = count + fresh.length - this.#maxMessages;
    const dropped: OutboxRecord[] = [];
    if (excess > 0) {
      if (this.#overflow === "reject" || fresh.length > this.#maxMessages) {
        tx.abort();
        await tx.done.catch(() => {});
        throw new EdgemqError(
          "QUEUE_FULL",
          `the outbox holds ${count} of at most ${this.#maxMessages} messages; ${fresh.length} more do not fit`,
          { outbox: this.name, pending: count },
        );
      }
      let cursor = await store.openCursor();
      while (cursor && dropped.length < excess) {
        dropped.push(cursor.value);
        await cursor.delete();
        cursor = await cursor.continue();
      }
    }
    const queued: OutboxRecordInfo[] = [];
    const now = Date.now();
    for (const item of fresh) {
      const record: OutboxRecord = {
        msgId: item.message.msgId,
        topic: item.topic,
        queue: item.queue ?? null,
        message: item.message,
        size: item.size,
        queuedAt: now,
      };
      const seq = await store.add(record);
      queued.push({ msgId: record.msgId, topic: record.topic, seq });
    }
    // Resolving only after tx.done: the records are on disk before the
    // caller is told, and before any network call.
    await tx.done;
    for (const r of dropped) {
      const error = new EdgemqError(
        "QUEUE_FULL",
        `outbox full: dropped the oldest message ${r.msgId}`,
      );
      this.#settle(r.msgId, (w) => w.reject(error));
      this.#emit("error", {
        error,
        kept: false,
        msgId: r.msgId,
        topic: r.topic,
        message: r.message,
      });
    }
    for (const info of queued) this.#emit("queued", info);
  }

  #emit(type: "queued", detail: OutboxRecordInfo): void;
  #emit(type: "sent", detail: { msgId: string; topic: string; result: SendResult }): void;
  #emit(type: "error", detail: OutboxErrorDetail): void;
  #emit(type: "drained", detail: { sent: number; dropped: number }): void;
  #emit(type: string, detail: unknown): void {
    this.dispatchEvent(new EdgemqEvent(type, detail));
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Arranges a drain in `delayMs`, keeping an earlier one already planned. */
  #schedule(delayMs: number): void {
    if (this.#closed) return;
    if (this.#draining) {
      this.#again = true;
      return;
    }
    const at = Date.now() + delayMs;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    this.#clearTimer();
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#run();
    }, delayMs);
  }

  #run(): Promise<void> {
    if (this.#draining) return this.#draining;
    const stats: PassStats = { sent: 0, dropped: 0 };
    this.#draining = (async (): Promise<number | undefined> => {
      let outcome: PassOutcome;
      try {
        do {
          this.#again = false;
          outcome = await this.#pass(stats);
          // Sends made during the pass may be in lanes that are not held.
        } while ((outcome === "empty" || outcome === "held") && this.#again && !this.#closed);
      } catch (error) {
        // A storage failure: keep everything and try again later.
        this.#emit("error", { error, kept: true });
        outcome = "failed";
      }
      if (outcome === "closed") return undefined;
      // Waiters still here either met a failure (their message stays and
      // goes later) or, on "empty", lost their record to another tab's drain
      // (it was sent, but the result went there).
      this.#settleAllQueued();
      if (outcome === "empty") {
        this.#attempt = 0;
        this.#holds.clear();
        if (stats.sent || stats.dropped) this.#emit("drained", stats);
        return undefined;
      }
      if (outcome === "held") {
        this.#attempt = 0;
        return this.#nextRetryIn();
      }
      return backoffDelay(this.#attempt++, Math.random(), this.#backoff);
    })().then((retryIn) => {
      this.#draining = undefined;
      if (retryIn !== undefined) this.#schedule(retryIn);
      else if (this.#again) this.#schedule(0);
    });
    return this.#draining;
  }

  /** Milliseconds until the first hold ends. */
  #nextRetryIn(): number {
    let first = Number.POSITIVE_INFINITY;
    for (const h of this.#holds.values()) first = Math.min(first, h.until);
    return Number.isFinite(first) ? Math.max(0, first - Date.now()) : 0;
  }

  #isHeld(r: OutboxRecord, now: number, holds: ReadonlyMap<string, Hold> = this.#holds): boolean {
    for (const key of [r.topic, laneOf(r)]) {
      const h = holds.get(key);
      if (h && h.until > now) return true;
    }
    return false;
  }

  /** Holds a lane or topic back after a kept failure, with its own backoff. */
  #hold(key: string, error: unknown, first: OutboxRecord, wholeTopic: boolean): void {
    const attempts = (this.#holds.get(key)?.attempts ?? 0) + 1;
    const until = Date.now() + backoffDelay(attempts - 1, Math.random(), this.#backoff);
    this.#holds.set(key, { until, attempts });
    this.#emit("error", {
      error,
      kept: true,
      topic: first.topic,
      ...(!wholeTopic && { msgId: first.msgId, message: first.message }),
      attempts,
      retryAt: until,
    });
  }

  /** Up to a batch of the oldest records that no hold keeps back. */
  async #eligible(db: IDBPDatabase<OutboxSchema>): Promise<OutboxRecord[]> {
    const now = Date.now();
    if (this.#holds.size === 0) return db.getAll(STORE, undefined, this.#maxBatch);
    // Judged against the holds as they were when the scan began: a drain()
    // that clears them mid-scan must not let a later record of a held topic
    // in while an earlier one was skipped.
    const holds = new Map(this.#holds);
    const out: OutboxRecord[] = [];
    let cursor = await db.transaction(STORE).store.openCursor();
    while (cursor && out.length < this.#maxBatch) {
      if (!this.#isHeld(cursor.value, now, holds)) out.push(cursor.value);
      cursor = await cursor.continue();
    }
    return out;
  }

  /** Sends everything stored and not held back, oldest first. */
  async #pass(stats: PassStats): Promise<PassOutcome> {
    const db = await this.#db;
    for (;;) {
      if (this.#closed) return "closed";
      if (!this.#isOnline()) return "offline";
      const records = await this.#eligible(db);
      if (records.length === 0) return (await db.count(STORE)) === 0 ? "empty" : "held";
      // One request per topic (and pinned queue), in order of first
      // appearance. Order only matters within a lane, and each request keeps
      // the sequence order.
      const groups = new Map<string, OutboxRecord[]>();
      for (const r of records) {
        const key = `${r.topic}\u0000${r.queue ?? ""}`;
        const g = groups.get(key);
        if (g) g.push(r);
        else groups.set(key, [r]);
      }
      for (const group of groups.values()) {
        if ((await this.#deliver(db, group, stats)) === "stop") return "failed";
      }
    }
  }

  /**
   * Sends one topic's (and pinned queue's) records, minus any a hold now
   * keeps back; "stop" when a failure that every request would meet ends
   * the pass.
   */
  async #deliver(
    db: IDBPDatabase<OutboxSchema>,
    all: OutboxRecord[],
    stats: PassStats,
  ): Promise<"ok" | "stop"> {
    const now = Date.now();
    const records = all.filter((r) => !this.#isHeld(r, now));
    const first = records[0];
    if (!first) return "ok";
    let results: SendResult[];
    try {
      results = await this.#send(
        first.topic,
        first.queue ?? undefined,
        records.map((r) => r.message),
      );
    } catch (error) {
      if (keeps(error)) return this.#kept(db, records, error, stats);
      const index = error instanceof EdgemqError ? error.details?.index : undefined;
      if (records.length > 1 && typeof index === "number" && records[index]) {
        // The broker named the bad message: drop it, send the others.
        await this.#drop(db, records[index], error, stats);
        return this.#deliver(
          db,
          records.filter((_, i) => i !== index),
          stats,
        );
      }
      if (records.length > 1) {
        // Cannot tell which one is bad: isolate them (a lane held meanwhile is skipped).
        for (const r of records)
          if ((await this.#deliver(db, [r], stats)) === "stop") return "stop";
        return "ok";
      }
      await this.#drop(db, first, error, stats);
      return "ok";
    }
    // Removed in a new transaction, only now that the broker has answered.
    const tx = db.transaction(STORE, "readwrite", { durability: "strict" });
    for (const r of records) void tx.store.delete(r.seq!);
    await tx.done;
    this.#holds.delete(first.topic);
    records.forEach((r, i) => {
      this.#holds.delete(laneOf(r));
      const result = results[i];
      stats.sent++;
      if (result) {
        this.#settle(r.msgId, (w) => w.resolve(result));
        this.#emit("sent", { msgId: r.msgId, topic: r.topic, result });
      }
    });
    return "ok";
  }

  /** A failure that keeps `records`: find how far it reaches and hold back only that. */
  async #kept(
    db: IDBPDatabase<OutboxSchema>,
    records: OutboxRecord[],
    error: unknown,
    stats: PassStats,
  ): Promise<"ok" | "stop"> {
    const first = records[0]!;
    const scope = failureScope(error);
    if (scope === "all") {
      this.#emit("error", { error, kept: true, topic: first.topic });
      return "stop";
    }
    if (scope === "topic") {
      this.#hold(first.topic, error, first, true);
      return "ok";
    }
    const lanes = [...new Set(records.map(laneOf))];
    if (lanes.length === 1) {
      this.#hold(lanes[0]!, error, first, false);
      return "ok";
    }
    // Several lanes: halve them (each lane whole, in order) until the ones
    // that fail are alone.
    const firstHalf = new Set(lanes.slice(0, Math.ceil(lanes.length / 2)));
    const a = records.filter((r) => firstHalf.has(laneOf(r)));
    const b = records.filter((r) => !firstHalf.has(laneOf(r)));
    if ((await this.#deliver(db, a, stats)) === "stop") return "stop";
    return this.#deliver(db, b, stats);
  }

  async #drop(
    db: IDBPDatabase<OutboxSchema>,
    record: OutboxRecord,
    error: unknown,
    stats: PassStats,
  ): Promise<void> {
    const tx = db.transaction(STORE, "readwrite", { durability: "strict" });
    void tx.store.delete(record.seq!);
    await tx.done;
    stats.dropped++;
    this.#settle(record.msgId, (w) => w.reject(error));
    this.#emit("error", {
      error,
      kept: false,
      msgId: record.msgId,
      topic: record.topic,
      message: record.message,
    });
  }
}
