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
 *   the drain sends them in sequence order, one request at a time, and stops
 *   at the first failure that keeps a record, so no later record overtakes it.
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
import { httpStatusOf, isRetryable } from "./transport.ts";

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
  /** The message concerned, when the error is about one message. */
  msgId?: string;
  topic?: string;
  message?: MessageInput;
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

type PassOutcome = "empty" | "failed" | "offline" | "closed";

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

  /** Drains now; resolves when this drain ends (outbox empty, or a failure that keeps messages). */
  drain(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#attempt = 0;
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
    const stats = { sent: 0, dropped: 0 };
    this.#draining = (async (): Promise<number | undefined> => {
      let outcome: PassOutcome;
      try {
        do {
          this.#again = false;
          outcome = await this.#pass(stats);
        } while (outcome === "empty" && this.#again && !this.#closed);
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
        if (stats.sent || stats.dropped) this.#emit("drained", stats);
        return undefined;
      }
      return backoffDelay(this.#attempt++, Math.random(), this.#backoff);
    })().then((retryIn) => {
      this.#draining = undefined;
      if (retryIn !== undefined) this.#schedule(retryIn);
      else if (this.#again) this.#schedule(0);
    });
    return this.#draining;
  }

  /** Sends everything stored, oldest first, until empty or a failure that keeps messages. */
  async #pass(stats: { sent: number; dropped: number }): Promise<PassOutcome> {
    const db = await this.#db;
    for (;;) {
      if (this.#closed) return "closed";
      if (!this.#isOnline()) return "offline";
      const records = await db.getAll(STORE, undefined, this.#maxBatch);
      if (records.length === 0) return "empty";
      // One request per topic (and pinned queue), in order of first
      // appearance. Order only matters within a topic's queue, and each group
      // keeps the sequence order.
      const groups = new Map<string, OutboxRecord[]>();
      for (const r of records) {
        const key = `${r.topic}\u0000${r.queue ?? ""}`;
        const g = groups.get(key);
        if (g) g.push(r);
        else groups.set(key, [r]);
      }
      for (const group of groups.values()) {
        if (!(await this.#sendGroup(db, group, stats))) return "failed";
      }
    }
  }

  /** Sends one group; false when a failure keeps it (stop draining). */
  async #sendGroup(
    db: IDBPDatabase<OutboxSchema>,
    records: OutboxRecord[],
    stats: { sent: number; dropped: number },
  ): Promise<boolean> {
    const first = records[0]!;
    let results: SendResult[];
    try {
      results = await this.#send(
        first.topic,
        first.queue ?? undefined,
        records.map((r) => r.message),
      );
    } catch (error) {
      if (keeps(error)) {
        this.#emit("error", { error, kept: true, topic: first.topic });
        return false;
      }
      const index = error instanceof EdgemqError ? error.details?.index : undefined;
      if (records.length > 1 && typeof index === "number" && records[index]) {
        // The broker named the bad message: drop it, send the others.
        await this.#drop(db, records[index], error, stats);
        return this.#sendGroup(
          db,
          records.filter((_, i) => i !== index),
          stats,
        );
      }
      if (records.length > 1) {
        // Cannot tell which one is bad: isolate them.
        for (const r of records) if (!(await this.#sendGroup(db, [r], stats))) return false;
        return true;
      }
      await this.#drop(db, first, error, stats);
      return true;
    }
    // Removed in a new transaction, only now that the broker has answered.
    const tx = db.transaction(STORE, "readwrite", { durability: "strict" });
    for (const r of records) void tx.store.delete(r.seq!);
    await tx.done;
    records.forEach((r, i) => {
      const result = results[i];
      stats.sent++;
      if (result) {
        this.#settle(r.msgId, (w) => w.resolve(result));
        this.#emit("sent", { msgId: r.msgId, topic: r.topic, result });
      }
    });
    return true;
  }

  async #drop(
    db: IDBPDatabase<OutboxSchema>,
    record: OutboxRecord,
    error: unknown,
    stats: { sent: number; dropped: number },
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
