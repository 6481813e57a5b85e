import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";
import { EdgemqError, badRequest } from "../protocol/errors.ts";
import { compileFilter, type MessageFilter } from "../protocol/filter.ts";
import { encodeTxId } from "../protocol/ids.ts";
import type { NormalizedMessage } from "../protocol/validate.ts";
import type {
  GroupConfig,
  GroupQueueStats,
  Message,
  PullResult,
  QueueStats,
  SendResult,
  TopicConfig,
} from "../protocol/types.ts";
import { runCheck } from "./check-back.ts";
import {
  type AckOutcome,
  type Claimed,
  type GroupMessageStatus,
  type HalfRow,
  type ReceiptRef,
  ShardStore,
  type TransactionCheckConfig,
} from "./store.ts";
import { batchFootprint, resolveStorageLimit, wouldExceedStorage } from "./storage-limit.ts";
import {
  SOON_HORIZON_MS,
  durableAlarmAt,
  nextAlarmAt,
  retentionDueAt,
  scheduledAlarmAt,
} from "./timing.ts";
import { type WakeHint, Waiters } from "./waiters.ts";
import { GroupCommit } from "./group-commit.ts";
import { acceptWatcher, notifyWatchers, type WatchSpec } from "./watchers.ts";

/** Key of the shard's own storage ceiling in its KV storage. */
const STORAGE_LIMIT_KEY = "storage_limit";

/** What a group of writes calls for after it ran (see QueueShard.afterWrites). */
interface WriteEffects {
  /** A message was stored (at this time): the retention sweep must be armed. */
  storedAt: number | null;
  /** Lowest offset appended: waiters look from there. */
  appendedFrom: number | null;
  /** Earliest timer the writes set (scheduled message, invisibility). */
  alarmAt: number | null;
  /** Something besides appends changed (an ack): every waiter looks again. */
  wakeAll: boolean;
}

const noEffects = (): WriteEffects => ({
  storedAt: null,
  appendedFrom: null,
  alarmAt: null,
  wakeAll: false,
});

const earlier = (a: number | null, b: number): number => (a === null || b < a ? b : a);

/** How long the delivered count of pulls may stay unsaved when nothing else writes. */
const DELIVERED_SAVE_MS = 1000;

/** Options of a pull, as the gateway passes them. */
export interface ShardPullOptions {
  offset?: number;
  group?: string;
  max: number;
  waitMs: number;
  filter?: string;
}

/**
 * One queue of one topic: the broker. Everything about a queue happens in
 * this single-threaded object, so appends are totally ordered without locks.
 * The class is a thin adapter: storage logic is in {@link ShardStore},
 * timing maths in `timing.ts`, waiting in {@link Waiters}.
 */
export class QueueShard extends DurableObject<Env> {
  private readonly store: ShardStore;
  /** Long-poll waiters held in this object (RPC waits); every wake also notifies the watcher sockets. */
  private readonly waiters = new Waiters((hint) => this.notifyWatchers(hint));
  /** Compiled watcher filters by text (watchers keep only the text, to survive hibernation). */
  private readonly watchFilters = new Map<string, MessageFilter>();
  /** The in-memory timer for a timer due soon (see armSoon). */
  private soon: { at: number; handle: ReturnType<typeof setTimeout> } | null = null;
  /** The alarm time currently set, mirrored to skip redundant setAlarm calls. */
  private armedAt: number | null = null;
  /** Saves the delivered count of pulls when nothing else has written it (see pull). */
  private deliveredSaveTimer: ReturnType<typeof setTimeout> | null = null;
  /** This shard's own storage ceiling setting as stored (null: none; undefined: not read yet). */
  private storageLimitSetting: number | null | undefined = undefined;
  /** When the alarm last moved scheduled messages into the log (paces the next move). */
  private lastMoveAt = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new ShardStore(ctx.storage.sql, (fn) => ctx.storage.transactionSync(fn));
    void ctx.blockConcurrencyWhile(async () => {
      this.armedAt = await ctx.storage.getAlarm();
      // Re-arm from the stored timers after a restart.
      if (this.configured()) await this.rearm(Date.now());
    });
  }

  private configured(): boolean {
    try {
      this.store.topicConfig();
      return true;
    } catch {
      return false;
    }
  }

  /** Runs `fn`, turning an EdgemqError into one that survives RPC. */
  private call<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw e instanceof EdgemqError ? e.toRpcError() : e;
    }
  }

  /** Runs `fn` in one SQLite transaction; on failure the in-memory mirror is reloaded. */
  private atomically<T>(fn: () => T): T {
    try {
      return this.ctx.storage.transactionSync(fn);
    } catch (e) {
      this.store.init();
      throw e;
    }
  }

  private async ensureAlarm(due: number | null): Promise<void> {
    if (due === null) return;
    const now = Date.now();
    this.armSoon(due, now);
    const at = durableAlarmAt(due, now)!;
    if (this.armedAt === null || at < this.armedAt) {
      this.armedAt = at;
      await this.ctx.storage.setAlarm(at);
    }
  }

  /**
   * Also runs the timers from memory when the next one is due within
   * {@link SOON_HORIZON_MS}: the runtime dispatches an alarm with some jitter
   * (about 10 ms at the median locally, 40 ms at p99), a timer in a live
   * object runs closer to its time. The alarm stays armed at the same time as
   * the durable backstop: an evicted or restarted object still runs its
   * timers, and whichever comes second finds nothing due.
   */
  private armSoon(at: number | null, now: number): void {
    if (at === null || at - now > SOON_HORIZON_MS) return;
    if (this.soon && this.soon.at <= at) return;
    if (this.soon) clearTimeout(this.soon.handle);
    const handle = setTimeout(
      () => {
        this.soon = null;
        this.runTimers().catch((e: unknown) => console.error("edgemq: shard timers failed", e));
      },
      Math.max(0, at - now),
    );
    this.soon = { at, handle };
  }

  /** Arms the single alarm at the earliest stored timer. */
  private async rearm(now: number, more = false): Promise<void> {
    const s = this.store;
    const config = s.topicConfig();
    const next = nextAlarmAt(
      [
        scheduledAlarmAt(s.nextScheduledAt(), this.lastMoveAt),
        s.nextVisibleAt(now),
        s.nextCheckAt(),
        retentionDueAt(s.oldestStoredAt(), config.retentionMs, s.lastSweep),
      ],
      now,
      more,
    );
    this.armSoon(next, now);
    const at = durableAlarmAt(next, now);
    if (at === this.armedAt) return;
    this.armedAt = at;
    if (at === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(at);
  }

  // ---- admin ---------------------------------------------------------------

  async configure(config: TopicConfig, queue: number): Promise<void> {
    this.store.configure(config, queue);
    await this.rearm(Date.now());
  }

  /** Deletes everything this shard holds. */
  async destroy(): Promise<void> {
    this.waiters.cancelAll();
    if (this.soon) clearTimeout(this.soon.handle);
    this.soon = null;
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.storageLimitSetting = undefined;
    this.armedAt = null;
    this.store.init();
  }

  stats(): QueueStats {
    return this.call(() => this.store.stats(Date.now()));
  }

  groupStats(group: string): GroupQueueStats {
    return this.call(() => this.store.groupStats(group));
  }

  async purge(): Promise<{ minOffset: number }> {
    const r = this.call(() => this.atomically(() => this.store.purge(Date.now())));
    await this.rearm(Date.now());
    return r;
  }

  // ---- produce -------------------------------------------------------------

  /**
   * Writes of concurrent calls share one commit (see group-commit.ts):
   * sends, receives, acks and offset commits.
   */
  private readonly writes = new GroupCommit(
    () => this.ctx.storage.sync(),
    () => this.afterWrites(),
  );
  /** What the writes of the group being run call for once they are all done. */
  private effects = noEffects();

  /**
   * Appends a batch, all or nothing. Answered once the batch is committed;
   * writes that arrive while a commit is under way are committed together.
   */
  send(messages: NormalizedMessage[]): Promise<SendResult[]> {
    return this.writes.submit(() => this.appendBatch(messages));
  }

  /** One send's batch, in its own nested transaction; alarms and wake-ups are left to afterWrites. */
  private appendBatch(messages: NormalizedMessage[]): SendResult[] {
    const now = Date.now();
    const results = this.call(() => {
      this.checkStorage(messages);
      return this.atomically(() => this.store.append(messages, now));
    });
    const e = this.effects;
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      if (r.status === "stored") {
        e.storedAt = now;
        if (e.appendedFrom === null || r.offset! < e.appendedFrom) e.appendedFrom = r.offset!;
      } else if (r.status === "scheduled") {
        e.alarmAt = earlier(e.alarmAt, messages[i]!.deliverAt!);
      }
    }
    return results;
  }

  /** After a group's writes, in the same event (so in the same commit): counters, alarms, waiters. */
  private async afterWrites(): Promise<void> {
    const e = this.effects;
    this.effects = noEffects();
    this.store.saveDelivered();
    if (e.storedAt !== null) {
      // Also when a later timer (a message scheduled days ahead) holds the
      // alarm: the sweep must come within retention. A no-op when the alarm
      // is already due sooner, as it is while older messages are stored.
      const config = this.store.topicConfig();
      await this.ensureAlarm(retentionDueAt(e.storedAt, config.retentionMs, this.store.lastSweep));
    }
    await this.ensureAlarm(e.alarmAt);
    if (e.wakeAll) this.waiters.wake();
    // Only appends: a waiter that found nothing before looks at the new messages only.
    else if (e.appendedFrom !== null) this.waiters.wake({ appendedFrom: e.appendedFrom });
  }

  /** Refuses a write that could take the database to its ceiling (see storage-limit.ts). */
  private checkStorage(messages: readonly NormalizedMessage[]): void {
    const limit = this.storageLimit();
    const size = this.ctx.storage.sql.databaseSize;
    if (wouldExceedStorage(size, batchFootprint(messages), limit)) {
      throw new EdgemqError(
        "STORAGE_FULL",
        `queue ${this.store.queueId} holds ${size} of its ${limit} storage bytes; consume and let retention or a purge make room`,
      );
    }
  }

  /** This shard's storage ceiling in bytes. */
  storageLimit(): number {
    const binding = (this.env as Env & { EDGEMQ_SHARD_STORAGE_LIMIT?: string })
      .EDGEMQ_SHARD_STORAGE_LIMIT;
    // Read once: every send checks it, and only setStorageLimit changes it.
    this.storageLimitSetting ??= this.ctx.storage.kv.get<number>(STORAGE_LIMIT_KEY) ?? null;
    return resolveStorageLimit(this.storageLimitSetting, binding);
  }

  /**
   * Sets this shard's own storage ceiling in bytes (null: back to the
   * binding or the default). For operators with smaller disks, and tests.
   */
  setStorageLimit(bytes: number | null): void {
    if (bytes === null) this.ctx.storage.kv.delete(STORAGE_LIMIT_KEY);
    else {
      if (!Number.isSafeInteger(bytes) || bytes <= 0)
        throw badRequest("storage limit must be a positive integer");
      this.ctx.storage.kv.put(STORAGE_LIMIT_KEY, bytes);
    }
    this.storageLimitSetting = bytes;
  }

  async recall(msgId: string): Promise<"recalled" | "delivered" | "unknown"> {
    const outcome = this.call(() => this.atomically(() => this.store.recall(msgId)));
    if (outcome === "recalled") await this.rearm(Date.now());
    return outcome;
  }

  // ---- pull ----------------------------------------------------------------

  /**
   * Reads by offset; with `waitMs`, holds the request until a message the
   * filter lets through is appended (woken by the append, not by polling).
   */
  async pull(opts: ShardPullOptions): Promise<PullResult> {
    try {
      return await this.pullNow(opts);
    } finally {
      this.scheduleDeliveredSave();
    }
  }

  /** A pull writes nothing; the delivered count it moved is saved by the next write or within a second. */
  private scheduleDeliveredSave(): void {
    if (this.deliveredSaveTimer !== null || !this.store.deliveredUnsaved) return;
    this.deliveredSaveTimer = setTimeout(() => {
      this.deliveredSaveTimer = null;
      this.store.saveDelivered();
    }, DELIVERED_SAVE_MS);
  }

  private async pullNow(opts: ShardPullOptions): Promise<PullResult> {
    const filter = this.call(() => compileFilter(opts.filter));
    const start = this.call(() => {
      this.store.topicConfig();
      if (opts.offset !== undefined) return opts.offset;
      const committed = this.store.committedOffset(opts.group!);
      return committed ?? this.store.minOffset();
    });
    let offset = start;
    let last: PullResult | undefined;
    const attempt = (): PullResult | null => {
      const r = this.store.pull(offset, opts.max, filter, Date.now());
      last = r;
      if (r.messages.length > 0 || r.skipped > 0) return r;
      // Nothing yet: keep the scan position, so a selective filter does not rescan.
      offset = r.nextOffset;
      return null;
    };
    const first = this.call(attempt);
    // Without a wait, answer with that one bounded scan (not a second one from where it stopped).
    if (first || opts.waitMs <= 0) return first ?? last!;
    const woken = await this.waiters.wait(opts.waitMs, attempt);
    return woken ?? this.call(() => this.store.pull(offset, opts.max, filter, Date.now()));
  }

  commitOffset(group: string, offset: number): Promise<void> {
    return this.writes.submit(() =>
      this.call(() => this.store.commitOffset(group, offset, Date.now())),
    );
  }

  committedOffset(group: string): number | null {
    return this.store.committedOffset(group);
  }

  resetOffset(group: string, to: { timestamp: number } | { to: "earliest" | "latest" }): number {
    return this.call(() => {
      const s = this.store;
      s.topicConfig();
      const offset =
        "timestamp" in to
          ? s.offsetForTimestamp(to.timestamp)
          : to.to === "earliest"
            ? s.minOffset()
            : s.maxOffset();
      return this.atomically(() => s.resetGroup(group, offset, Date.now()));
    });
  }

  // ---- receive / ack -------------------------------------------------------

  /** Claims up to `max` messages for the group now (never waits); committed with concurrent writes. */
  async receive(
    group: GroupConfig,
    max: number,
    invisibleMs: number,
    filter?: string,
  ): Promise<Claimed[]> {
    const f = this.call(() => compileFilter(filter));
    // Nothing to hand out: answer now rather than wait for a commit under way.
    if (!this.call(() => this.store.hasReceivable(group.group, f, Date.now()))) return [];
    return this.writes.submit(() => {
      const now = Date.now();
      const claimed = this.call(() =>
        this.atomically(() => this.store.receive(group, max, invisibleMs, f, now)),
      );
      if (claimed.length) this.effects.alarmAt = earlier(this.effects.alarmAt, now + invisibleMs);
      return claimed;
    });
  }

  /**
   * Resolves true as soon as a receive by `group` would hand out something,
   * false after `waitMs`. Claims nothing, so a client that went away loses
   * nothing; `cancelWait(waitId)` ends it early.
   */
  async waitReceivable(
    group: string,
    filter: string | undefined,
    waitMs: number,
    waitId: string,
  ): Promise<boolean> {
    const f = this.call(() => compileFilter(filter));
    const check = (hint?: WakeHint) => {
      const now = Date.now();
      const found =
        hint?.appendedFrom === undefined
          ? this.store.hasReceivable(group, f, now)
          : this.store.hasReceivableSince(group, f, now, hint.appendedFrom);
      return found ? true : null;
    };
    if (this.call(check)) return true;
    if (waitMs <= 0) return false;
    return (await this.waiters.wait(waitMs, check, waitId)) ?? false;
  }

  cancelWait(waitId: string): void {
    this.waiters.cancel(waitId);
  }

  ack(group: string, refs: ReceiptRef[]): Promise<AckOutcome[]> {
    return this.writes.submit(() => {
      const out = this.call(() => this.atomically(() => this.store.ack(group, refs, Date.now())));
      // An ack can free an orderly group's key: waiting receives look again.
      if (out.some((o) => o.ok)) this.effects.wakeAll = true;
      return out;
    });
  }

  async nack(group: GroupConfig, refs: ReceiptRef[], delayMs?: number): Promise<AckOutcome[]> {
    const now = Date.now();
    const out = this.call(() => this.atomically(() => this.store.nack(group, refs, delayMs, now)));
    await this.rearm(now);
    // A retry due now, or a dead letter that frees an orderly key: waiting receives look again.
    if (out.some((o) => o.ok)) this.waiters.wake();
    return out;
  }

  async changeInvisibility(group: string, ref: ReceiptRef, invisibleMs: number): Promise<string> {
    const now = Date.now();
    const handle = this.call(() =>
      this.atomically(() => this.store.changeInvisibility(group, ref, invisibleMs, now)),
    );
    await this.ensureAlarm(now + invisibleMs);
    return handle;
  }

  deadLetters(group: string, limit: number): Message[] {
    return this.call(() => this.store.deadLetters(group, limit));
  }

  async resendDeadLetters(group: string, msgIds: string[] | null): Promise<string[]> {
    const ids = this.call(() =>
      this.atomically(() => this.store.resendDeadLetters(group, msgIds, Date.now())),
    );
    if (ids.length) this.waiters.wake();
    return ids;
  }

  // ---- query ---------------------------------------------------------------

  findById(msgId: string): (Message & { groups: Record<string, GroupMessageStatus> }) | null {
    return this.call(() => this.store.findById(msgId));
  }

  findByKey(key: string, limit: number): Message[] {
    return this.call(() => this.store.findByKey(key, limit));
  }

  findByTime(from: number, to: number, limit: number): Message[] {
    return this.call(() => this.store.findByTime(from, to, limit));
  }

  // ---- transactions --------------------------------------------------------

  async prepare(
    m: NormalizedMessage,
    producerGroup: string,
    check: TransactionCheckConfig,
  ): Promise<number> {
    const now = Date.now();
    const id = this.call(() => {
      this.checkStorage([m]);
      return this.atomically(() => this.store.prepare(m, producerGroup, check, now));
    });
    if (check.checkUrl) await this.ensureAlarm(now + check.checkAfterMs);
    return id;
  }

  async endTransaction(
    id: number,
    commit: boolean,
  ): Promise<{ status: "committed" | "rolledBack"; offset: number | null; msgId: string }> {
    const r = this.call(() =>
      this.atomically(() =>
        this.store.endTransaction(
          id,
          commit,
          Date.now(),
          commit ? "producer commit" : "producer rollback",
        ),
      ),
    );
    if (commit) this.waiters.wake();
    await this.rearm(Date.now());
    return { ...r, msgId: this.store.half(id)!.msg_id };
  }

  /** One transaction, open or ended (ended ones are kept a day), or null. */
  transaction(id: number): HalfRow | null {
    return this.store.half(id) ?? null;
  }

  openTransactions(limit: number): HalfRow[] {
    return this.store.openHalves(limit);
  }

  // ---- timers --------------------------------------------------------------

  // ---- watchers (hibernation-friendly long-poll; see watchers.ts) ----------

  /** Accepts a watcher WebSocket from the gateway; the object may hibernate while it is open. */
  override fetch(request: Request): Response {
    return acceptWatcher(this.ctx, request, this.store.maxOffset(), this.watchCheck(Date.now()));
  }

  /** Tells the watchers whose wait this change may end (the checks a held wait would run). */
  private notifyWatchers(hint?: WakeHint): void {
    const maxOffset = this.store.maxOffset();
    const appended = hint?.appendedFrom === undefined ? undefined : maxOffset - hint.appendedFrom;
    notifyWatchers(this.ctx, maxOffset, this.watchCheck(Date.now(), hint), appended);
  }

  /** Whether a watcher's wait is over: with a hint, only what was appended is looked at. */
  private watchCheck(now: number, hint?: WakeHint): (spec: WatchSpec) => boolean {
    return (spec) => {
      const f = this.watchFilter(spec.filter);
      if (spec.kind === "pull") {
        return this.store.hasPullable(Math.max(spec.offset, hint?.appendedFrom ?? 0), f, now);
      }
      return hint?.appendedFrom === undefined
        ? this.store.hasReceivable(spec.group, f, now)
        : this.store.hasReceivableSince(spec.group, f, now, hint.appendedFrom);
    };
  }

  private watchFilter(text: string | null): MessageFilter {
    const key = text ?? "";
    let f = this.watchFilters.get(key);
    if (!f) {
      if (this.watchFilters.size >= 256) this.watchFilters.clear();
      f = compileFilter(text ?? undefined);
      this.watchFilters.set(key, f);
    }
    return f;
  }

  /** Watchers never need to say anything. */
  override webSocketMessage(): void {}

  override webSocketClose(ws: WebSocket): void {
    try {
      ws.close(1000, "bye");
    } catch {
      // already closed
    }
  }

  override webSocketError(ws: WebSocket): void {
    try {
      ws.close(1011, "error");
    } catch {
      // already closed
    }
  }

  /**
   * The one alarm: moves due scheduled messages, lapses receipts, sweeps
   * retention and starts transaction check-backs, each in bounded batches,
   * then re-arms at the earliest remaining timer.
   */
  override async alarm(): Promise<void> {
    this.armedAt = null;
    await this.runTimers();
  }

  /** The alarm's work, also run by the in-memory timer (see armSoon). */
  private async runTimers(): Promise<void> {
    if (!this.configured()) return;
    const now = Date.now();
    const s = this.store;
    let more = false;
    let hint: WakeHint | undefined;
    const checks = this.atomically(() => {
      const appendedFrom = s.maxOffset();
      const moved = s.moveDue(now);
      if (moved.moved > 0) this.lastMoveAt = now;
      more = moved.more || more;
      const lapsed = s.lapseReceipts(now);
      more = lapsed.more || more;
      // Only scheduled messages appended (no receipt lapsed, no retry due): waiters
      // look at the new messages only, and no more receive watchers hear of them
      // than there are messages (the rest would race for them and get nothing).
      if (moved.moved > 0 && lapsed.handled === 0 && s.groupsWithDueRetries(now).length === 0) {
        hint = { appendedFrom };
      }
      const config = s.topicConfig();
      const due = retentionDueAt(s.oldestStoredAt(), config.retentionMs, s.lastSweep);
      if (due !== null && due <= now) more = s.sweepRetention(now).more || more;
      return s.claimDueChecks(now);
    });
    this.waiters.wake(hint);
    await this.rearm(Date.now(), more);
    // Not awaited: a check URL that hangs must not hold this alarm (and with it
    // every later timer of the shard). Each row is already claimed, so a check
    // lost with the object is simply repeated at its next check time.
    if (checks.length) this.ctx.waitUntil(this.runChecks(checks));
  }

  /** Asks producer groups about open transactions; a slow check URL never holds up sends. */
  private async runChecks(rows: HalfRow[]): Promise<void> {
    const topic = this.store.topicConfig().topic;
    await Promise.all(
      rows.map(async (row) => {
        const txId = encodeTxId({ topic, queue: this.store.queueId, id: row.id });
        const verdict = await runCheck(row, topic, txId, this.env);
        if (verdict === "commit" || verdict === "rollback") {
          try {
            this.atomically(() =>
              this.store.endTransaction(
                row.id,
                verdict === "commit",
                Date.now(),
                `check-back ${verdict}`,
              ),
            );
            if (verdict === "commit") this.waiters.wake();
          } catch (e) {
            // Ended meanwhile by the producer: its word stands.
            if (!(e instanceof EdgemqError)) throw e;
          }
        } else if (verdict === "exhausted") {
          try {
            this.atomically(() =>
              this.store.endTransaction(row.id, false, Date.now(), "check-back limit reached"),
            );
          } catch (e) {
            if (!(e instanceof EdgemqError)) throw e;
          }
        } else {
          this.atomically(() => this.store.deferCheck(row.id, Date.now()));
        }
      }),
    );
    // The topic may have been deleted while the checks ran.
    if (this.configured()) await this.rearm(Date.now());
  }
}
