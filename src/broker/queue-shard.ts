/**
 * One queue of one topic: the broker. Everything about a queue happens in
 * this single-threaded object, so appends are totally ordered without locks.
 *
 * The class is a thin adapter between RPC and the store (store/): every
 * method reads with {@link QueueShard.#read} or writes with
 * {@link QueueShard.#write}, and answers an {@link Outcome}. Writes of
 * concurrent calls share one commit (concurrency/group-commit.ts); the store
 * modules record what their writes call for (store/effects.ts), and once a
 * group of writes ran the object acts on that record in one place
 * (`#afterWrites`): it arms the alarm (timers/shard-timers.ts), tells the
 * watchers of waiting consumers (watch/watchers.ts) and pushes to subscribed
 * streaming sessions (sessions/hub.ts).
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";
import { type AnswerBytes, WHOLE_ANSWER, heldBytes } from "../protocol/encoded-size.ts";
import { EdgemqError, badRequest } from "../protocol/errors.ts";
import { FilterCache } from "../protocol/filter.ts";
import { Limits } from "../protocol/limits.ts";
import { encodeTxId } from "../protocol/ids.ts";
import type { PushConfig } from "../protocol/push.ts";
import type { GroupConfig, TopicConfig } from "../protocol/types.ts";
import type { NormalizedMessage } from "../protocol/validate.ts";
import { DueBackoff } from "./timers/due-backoff.ts";
import { ShardTimers } from "./timers/shard-timers.ts";
import { GroupCommit } from "./concurrency/group-commit.ts";
import { answer, answerNow } from "./outcome.ts";
import { runCheck } from "./outbound/check-back.ts";
import { deliver } from "./outbound/push-delivery.ts";
import type { ReceiptRef, ResetTarget } from "./store/consumption.ts";
import { DUE_KINDS, type DueKind, nextDueAt, runDueKind } from "./store/due-work.ts";
import type { WriteEffects } from "./store/effects.ts";
import type { Sender } from "./store/msg-ids.ts";
import { type ShardStore, openShardStore } from "./store/index.ts";
import type { PushClaim, PushOutcome } from "./store/push.ts";
import {
  admittedLimit,
  assertRoomFor,
  batchFootprint,
  plentyOfRoom,
  resolveStorageLimit,
} from "./store/storage-limit.ts";
import type { DueCheck, TransactionCheckConfig, TxCaller } from "./store/transactions.ts";
import { PUSH_DELIVERIES_PER_INVOCATION, PUSH_FETCHES_PER_SHARD } from "./timers/push-timing.ts";
import { retentionDueAt } from "./timers/timing.ts";
import { type WatchCondition, ShardWatchers, closeQuietly } from "./watch/watchers.ts";
import { PING_FRAME, PONG_FRAME, SessionClose } from "../protocol/session.ts";
import { SESSION_PATH } from "./sessions/attachment.ts";
import { SessionHub } from "./sessions/hub.ts";

export type { Outcome } from "./outcome.ts";
export type { Sender } from "./store/msg-ids.ts";
export type { TxCaller } from "./store/transactions.ts";

/** Key of the shard's own storage ceiling in its KV storage. */
const STORAGE_LIMIT_KEY = "storage_limit";

/** How long the delivered count of pulls may stay unsaved when nothing else writes. */
const DELIVERED_SAVE_MS = 1000;

/**
 * The alarm set for new messages of push subscriptions, as a backstop to the
 * claim round that starts at once: it delivers them if the object is lost
 * before that round commits.
 */
const PUSH_BACKSTOP_MS = 1000;

/** How long a push subscription's signing secrets read from the registry are reused. */
const PUSH_SECRETS_TTL_MS = 30_000;

/** One queue's part of a batch spanning queues, as the gateway admitted it (see send). */
export interface SpanningPart {
  /** The reservation holding its room here; absent when the room was known to be plenty. */
  reservation?: string;
}

/** What a reservation needs to know of a part's messages (no bodies). */
export interface ReservePart {
  messages: Pick<NormalizedMessage, "msgId" | "clientMsgId" | "size" | "deliverAt" | "expireAt">[];
  /** The part's upper estimate of database bytes (see storage-limit.ts). */
  footprint: number;
}

/** Options of a pull, as the gateway passes them (the gateway does the waiting). */
export interface ShardPullOptions {
  offset?: number;
  group?: string;
  max: number;
  filter?: string;
}

/** A delivery that just ended, and what is left of its invocation's budget of deliveries. */
interface Settled {
  claim: PushClaim;
  outcome: PushOutcome;
  wave: { left: number };
}

export class QueueShard extends DurableObject<Env> {
  readonly #store: ShardStore;
  readonly #timers: ShardTimers;
  /** Kinds of timer work that failed wait a while before their next try (see timers/due-backoff.ts). */
  readonly #backoff = new DueBackoff();
  /** Compiled filters by text: each is compiled once, not once per call or watcher check. */
  readonly #filters = new FilterCache();
  /** One commit holds at most one answer's budget of message bytes (see group-commit.ts). */
  readonly #writes = new GroupCommit(
    () => this.ctx.storage.sync(),
    () => this.#afterWrites(),
    Limits.maxAnswerBytes,
  );
  /** Saves the delivered count of pulls when nothing else has written it (see pull). */
  #deliveredSave: ReturnType<typeof setTimeout> | null = null;
  /** This shard's own storage ceiling setting as stored (null: none; undefined: not read yet). */
  #storageLimitSetting: number | null | undefined = undefined;
  /** Parked long-polls, grouped by what they wait for (watch/watchers.ts). */
  readonly #watchers: ShardWatchers;
  /** Streaming sessions the gateway handed over (sessions/hub.ts). */
  readonly #sessions: SessionHub;
  /**
   * Push fetches running now (at most PUSH_FETCHES_PER_SHARD). Only a bound:
   * what they deliver is claimed in the tables, so a restart that forgets
   * them loses nothing (the claims lapse and are delivered again).
   */
  #pushRunning = 0;
  #pumpQueued = false;
  /** Push subscriptions' signing secrets, as the registry last answered (a cache; see #pushSecrets). */
  readonly #secrets = new Map<string, { secrets: string[]; at: number }>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#store = openShardStore(ctx.storage.sql, (fn) => ctx.storage.transactionSync(fn));
    this.#timers = new ShardTimers(ctx.storage, () => this.#runDueWork());
    this.#watchers = new ShardWatchers(ctx);
    this.#sessions = new SessionHub({
      ctx,
      env,
      store: this.#store,
      write: (fn) => this.#write(fn),
      writeNow: (fn) => this.#writeNow(fn),
      durable: () => ctx.storage.sync(),
      assertRoomFor: (messages) => this.#assertRoomFor(batchFootprint(messages), Date.now()),
      filter: (text) => this.#filters.get(text),
      subscribeGroup: (group) =>
        env.REGISTRY.get(env.REGISTRY.idFromName("registry")).subscribe(
          group,
          this.#store.state.topicConfig().topic,
        ),
    });
    // Session keep-alives are answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    void ctx.blockConcurrencyWhile(async () => {
      await this.#timers.load();
      // Re-arm from the stored timers after a restart.
      await this.#rearm(Date.now(), false);
    });
    // Deliveries pending when the object stopped go on (claims it held lapse and go again).
    this.#schedulePump();
  }

  // ---- the one way to read, the one way to write -----------------------------

  /** Reads with the store: no write, no commit to wait for. */
  #read<T>(fn: (s: ShardStore, now: number) => T): T {
    return fn(this.#store, Date.now());
  }

  /**
   * Writes with the store, in the next group commit (writes of concurrent
   * calls share one commit) and in a transaction of its own: all or nothing,
   * and a failure leaves the other writes of the group, and the record of
   * effects, as they were. Resolves once the group ran and its effects were
   * acted on; the runtime's output gate holds every answer until the commit
   * is durable, so nothing is acknowledged early. `weight` is the bytes of
   * the messages it stores, which bound a group.
   */
  #write<T>(fn: (s: ShardStore, now: number) => T, weight = 0): Promise<T> {
    return this.#writes.submit(() => this.#writeNow(fn), weight);
  }

  /**
   * The body of a write, run now: a transaction of its own (nested inside a
   * write under way), all or nothing together with its record of effects.
   * Used directly only by sessions, for a lazy write joining a write under way
   * and for claims at the notify point, which commit with the change notified.
   */
  #writeNow<T>(fn: (s: ShardStore, now: number) => T): T {
    const effects = this.#store.state.effects;
    const before = effects.snapshot();
    try {
      return this.ctx.storage.transactionSync(() => fn(this.#store, Date.now()));
    } catch (e) {
      effects.restore(before);
      this.#store.state.reload();
      throw e;
    }
  }

  /** After each group of writes, in the same event (so in the same commit). */
  async #afterWrites(): Promise<void> {
    const s = this.#store;
    s.state.saveDelivered();
    const e = s.state.effects.take();
    if (e.empty) return;
    const now = Date.now();
    if (e.storedAt !== null && s.state.config) {
      // Also when a later timer (a message scheduled days ahead) holds the
      // alarm: the sweep must come within retention. A no-op when the alarm
      // is already due sooner, as it is while older messages are stored.
      const { retentionMs } = s.state.config;
      await this.#timers.ensure(retentionDueAt(e.storedAt, retentionMs, s.log.lastSweep), now);
    }
    if (e.rearm || e.moreDue) await this.#rearm(now, e.moreDue);
    else await this.#timers.ensure(e.timerAt, now);
    // New messages for push subscriptions: a claim round now, and the alarm
    // within a second, so their deliveries start even if the object is lost
    // first. (Other changes that free messages, retries and lapses come
    // through the alarm, or the calls below that start a round themselves.)
    if (e.appendedFrom !== null && s.push.active()) {
      await this.#timers.ensure(now + PUSH_BACKSTOP_MS, now);
      this.#schedulePump();
    }
    this.#notify(e);
    // Claims the sessions just made (same event, same commit) set invisibility timers.
    const pushed = s.state.effects.take();
    if (pushed.timerAt !== null) await this.#timers.ensure(pushed.timerAt, Date.now());
  }

  /** Sets the alarm at the earliest stored timer (none once the topic is gone). */
  async #rearm(now: number, more: boolean): Promise<void> {
    if (!this.#store.state.config) return;
    const next = nextDueAt(this.#store, now, this.#timers.lastMoveAt, more, (k) =>
      this.#backoff.notBefore(k),
    );
    await this.#timers.set(next, now);
  }

  // ---- admin ---------------------------------------------------------------

  configure(config: TopicConfig, queue: number) {
    return answer(async () => {
      await this.#write((s) => s.state.configure(config, queue));
      // Sessions learn the queue count here, so no client polls the route.
      this.#sessions.route(config.topic, config.queues);
    });
  }

  /** Deletes everything this shard holds. */
  destroy() {
    return answer(async () => {
      this.#sessions.closeAll(SessionClose.NOT_FOUND, "topic deleted");
      await this.#timers.clear();
      await this.ctx.storage.deleteAll();
      this.#storageLimitSetting = undefined;
      this.#store.state.init();
    });
  }

  stats() {
    return answerNow(() =>
      this.#read((s, now) => ({ ...s.log.stats(now), parkedWaits: this.#watchers.stats().waits })),
    );
  }

  groupStats(group: string) {
    return answerNow(() => this.#read((s) => s.consumption.groupStats(group)));
  }

  /** Purges the queue at once; the alarm deletes what is left in bounded steps (see store/purge.ts). */
  purge() {
    return answer(() => this.#write((s, now) => s.purging.purge(now)));
  }

  /**
   * Sets this shard's own storage ceiling in bytes (null: back to the
   * binding or the default). For operators with smaller disks, and tests.
   */
  setStorageLimit(bytes: number | null) {
    return answer(() => {
      if (bytes !== null && (!Number.isSafeInteger(bytes) || bytes <= 0))
        throw badRequest("storage limit must be a positive integer");
      return this.#write(() => {
        if (bytes === null) this.ctx.storage.kv.delete(STORAGE_LIMIT_KEY);
        else this.ctx.storage.kv.put(STORAGE_LIMIT_KEY, bytes);
        this.#storageLimitSetting = bytes;
      });
    });
  }

  /** This shard's storage ceiling in bytes. */
  storageLimit() {
    return answerNow(() => this.#storageLimit());
  }

  #storageLimit(): number {
    const binding = (this.env as Env & { EDGEMQ_SHARD_STORAGE_LIMIT?: string })
      .EDGEMQ_SHARD_STORAGE_LIMIT;
    // Read once: every send checks it, and only setStorageLimit changes it.
    this.#storageLimitSetting ??= this.ctx.storage.kv.get<number>(STORAGE_LIMIT_KEY) ?? null;
    return resolveStorageLimit(this.#storageLimitSetting, binding);
  }

  /**
   * Refuses a write of `footprint` bytes that could take the database to its
   * ceiling, counting the room reserved for parts of batches spanning queues
   * (see storage-limit.ts). An admitted part is held to the admitted limit.
   */
  #assertRoomFor(footprint: number, now: number, admitted = false): void {
    const size = this.ctx.storage.sql.databaseSize;
    const reserved = this.#store.state.reservations.total(now).footprint;
    const limit = this.#storageLimit();
    assertRoomFor(
      footprint + reserved,
      size,
      admitted ? admittedLimit(limit) : limit,
      this.#store.state.queueId,
    );
  }

  // ---- produce -------------------------------------------------------------

  /**
   * Appends a batch (already validated) from `sender` (a scoped token's
   * subject, or null for the admin space), all or nothing; msgIds are
   * deduplicated within the sender's space. With `part`, the
   * batch is one queue's part of a batch that spans queues, admitted by the
   * gateway (its room reserved here under `part.reservation`, or known to be
   * plenty): it is not refused for a `reject` bound or the ceiling it was
   * admitted under (see store/reservations.ts).
   */
  send(messages: NormalizedMessage[], sender: Sender, part?: SpanningPart) {
    return answer(() =>
      this.#write((s, now) => {
        if (part?.reservation) s.state.reservations.release(part.reservation);
        this.#assertRoomFor(batchFootprint(messages), now, part !== undefined);
        return s.log.append(messages, now, sender, part !== undefined);
      }, heldBytes(messages)),
    );
  }

  /**
   * Reserves room for one queue's part of a batch that spans queues, before
   * any part is written: refuses as a send of the part would (QUEUE_FULL
   * under a `reject` bound, STORAGE_FULL near the ceiling), or holds the
   * room under `id` for a while. Answers whether this shard has plenty of
   * room, so the gateway may skip reserving here for a while. Duplicates
   * need no room: `sender` is the space their msgIds are looked up in.
   */
  reserve(id: string, part: ReservePart, sender: Sender) {
    return answer(() =>
      this.#write((s, now) => {
        const room = s.log.reservable(part.messages, now, sender);
        this.#assertRoomFor(part.footprint, now);
        s.state.reservations.hold(id, { ...room, footprint: part.footprint }, now);
        const reserved = s.state.reservations.total(now).footprint;
        return {
          plenty: plentyOfRoom(this.ctx.storage.sql.databaseSize, reserved, this.#storageLimit()),
        };
      }),
    );
  }

  /** Gives up a reservation whose batch was refused by another queue. */
  release(id: string) {
    return answerNow(() => {
      this.#store.state.reservations.release(id);
    });
  }

  /** Recalls `sender`'s scheduled message not yet due (the admin: anyone's): `recalled`, `delivered` or `unknown`. */
  recall(msgId: string, sender: Sender) {
    return answer(() => this.#write((s) => s.scheduling.recall(msgId, sender)));
  }

  // ---- pull ----------------------------------------------------------------

  /** Reads by offset (or from the group's committed offset); never waits. */
  pull(opts: ShardPullOptions) {
    const out = answerNow(() =>
      this.#read((s, now) => {
        const filter = this.#filters.get(opts.filter);
        s.state.topicConfig();
        const offset =
          opts.offset ?? s.consumption.committedOffset(opts.group!) ?? s.state.minOffset();
        return s.log.pull(offset, opts.max, filter, now);
      }),
    );
    this.#scheduleDeliveredSave();
    return out;
  }

  /** A pull writes nothing; the delivered count it moved is saved by the next write or within a second. */
  #scheduleDeliveredSave(): void {
    if (this.#deliveredSave !== null || !this.#store.state.deliveredUnsaved) return;
    this.#deliveredSave = setTimeout(() => {
      this.#deliveredSave = null;
      this.#write((s) => s.state.saveDelivered()).catch((e: unknown) =>
        console.error("edgemq: saving the delivered count failed", e),
      );
    }, DELIVERED_SAVE_MS);
  }

  commitOffset(group: string, offset: number) {
    return answer(() => this.#write((s, now) => s.consumption.commitOffset(group, offset, now)));
  }

  resetOffset(group: string, to: ResetTarget) {
    return answer(async () => {
      const offset = await this.#write((s, now) => s.consumption.resetGroupTo(group, to, now));
      // A push subscription's group moved back: its deliveries go on from there.
      this.#schedulePump();
      return offset;
    });
  }

  // ---- receive / ack -------------------------------------------------------

  /**
   * Claims up to `max` messages for the group now (never waits), within
   * `bytes` (by default a whole answer's budget, at least one message).
   */
  receive(
    group: GroupConfig,
    max: number,
    invisibleMs: number,
    filter?: string,
    bytes: AnswerBytes = WHOLE_ANSWER,
  ) {
    return answer(async () => {
      const f = this.#filters.get(filter);
      // Nothing to hand out: answer now rather than wait for a commit under way.
      if (!this.#read((s, now) => s.receiving.hasReceivable(group.group, f, now))) return [];
      return this.#write((s, now) => s.receiving.receive(group, max, invisibleMs, f, now, bytes));
    });
  }

  ack(group: string, refs: ReceiptRef[]) {
    return answer(() => this.#write((s, now) => s.consumption.ack(group, refs, now)));
  }

  nack(group: GroupConfig, refs: ReceiptRef[], delayMs?: number) {
    return answer(() => this.#write((s, now) => s.consumption.nack(group, refs, delayMs, now)));
  }

  changeInvisibility(group: string, ref: ReceiptRef, invisibleMs: number) {
    return answer(() =>
      this.#write((s, now) => s.consumption.changeInvisibility(group, ref, invisibleMs, now)),
    );
  }

  /** Up to `limit` dead letters of the group, within `bytes`. */
  deadLetters(group: string, limit: number, bytes: AnswerBytes = WHOLE_ANSWER) {
    return answerNow(() => this.#read((s) => s.consumption.deadLetters(group, limit, bytes)));
  }

  resendDeadLetters(group: string, msgIds: string[] | null) {
    return answer(async () => {
      const resent = await this.#write((s, now) =>
        s.consumption.resendDeadLetters(group, msgIds, now),
      );
      // Resent to a push subscription's group: delivered again now.
      if (resent.resent.length) this.#schedulePump();
      return resent;
    });
  }

  // ---- query ---------------------------------------------------------------

  /** A message by id in `sender`'s space (the admin's: any space). */
  findById(msgId: string, sender: Sender) {
    return answerNow(() => this.#read((s) => s.queries.findById(msgId, sender)));
  }

  /** Messages with a key, oldest first, within `bytes`. */
  findByKey(key: string, limit: number, bytes: AnswerBytes = WHOLE_ANSWER) {
    return answerNow(() => this.#read((s) => s.queries.findByKey(key, limit, bytes)));
  }

  /** Messages stored in `[from, to)`, oldest first, within `bytes`. */
  findByTime(from: number, to: number, limit: number, bytes: AnswerBytes = WHOLE_ANSWER) {
    return answerNow(() => this.#read((s) => s.queries.findByTime(from, to, limit, bytes)));
  }

  // ---- transactions --------------------------------------------------------

  /** Stores `sender`'s half message; answers its id inside this shard and its txId's secret. */
  prepare(
    m: NormalizedMessage,
    producerGroup: string,
    check: TransactionCheckConfig,
    sender: Sender,
  ) {
    return answer(() =>
      this.#write(
        (s, now) => {
          // A half message is stored twice over its life: half row, then log row.
          this.#assertRoomFor(2 * batchFootprint([m]), now);
          return s.transactions.prepare(m, producerGroup, check, now, sender);
        },
        heldBytes([m]),
      ),
    );
  }

  /** A producer's commit or rollback; TRANSACTION_NOT_FOUND unless `caller` may end it. */
  endTransaction(id: number, commit: boolean, caller: TxCaller) {
    const reason = commit ? "producer commit" : "producer rollback";
    return answer(() =>
      this.#write((s, now) => s.transactions.endTransaction(id, commit, now, reason, caller)),
    );
  }

  /** One transaction, open or ended (ended ones are kept a day), or null (also when `caller` may not see it). */
  transaction(id: number, caller: TxCaller) {
    return answerNow(() => this.#read((s) => s.transactions.transaction(id, caller)));
  }

  openTransactions(limit: number) {
    return answerNow(() => this.#read((s) => s.transactions.openTransactions(limit)));
  }

  // ---- timers --------------------------------------------------------------

  /**
   * The one alarm: moves due scheduled messages, lapses receipts, cleans up
   * after a purge, sweeps retention, goes on with resends, rolls back half
   * messages past their lifetime and starts transaction check-backs, each in
   * bounded batches, then re-arms at the earliest remaining timer.
   */
  override async alarm(): Promise<void> {
    this.#timers.fired();
    await this.#runDueWork();
  }

  /**
   * The alarm's work, also run by the in-memory timer (see shard-timers.ts).
   * Each kind is a write of its own (one commit for all of them, each in its
   * own transaction): a kind that fails leaves the others' work done, backs
   * off, and the alarm is re-armed from what is left either way.
   */
  async #runDueWork(): Promise<void> {
    if (!this.#store.state.config) return;
    const start = Date.now();
    const runs = DUE_KINDS.filter((kind) => this.#backoff.ready(kind, start)).map((kind) =>
      this.#write((s, now) => this.#runDueKind(s, kind, now)).catch((e: unknown) => {
        console.error(`edgemq: shard timer work "${kind}" failed`, e);
        return null;
      }),
    );
    const done = await Promise.all(runs);
    // A kind that failed set nothing: the alarm is set from the tables and the backoff.
    if (done.includes(null)) await this.#rearm(Date.now(), false);
    const checks = done.flatMap((d) => d?.checks ?? []);
    // Not awaited: a check URL that hangs must not hold this alarm (and with it
    // every later timer of the shard). Each check is already claimed, so one
    // lost with the object is simply repeated at its next check time.
    if (checks.length) this.ctx.waitUntil(this.#runChecks(checks));
    await this.#pump();
  }

  /** One kind of due work; a failure is recorded before the group's re-arm reads the backoff. */
  #runDueKind(s: ShardStore, kind: DueKind, now: number) {
    try {
      const done = runDueKind(s, kind, now);
      this.#backoff.succeeded(kind);
      if (done.moved > 0) this.#timers.lastMoveAt = now;
      return done;
    } catch (e) {
      this.#backoff.failed(kind, now);
      throw e;
    }
  }

  /** Asks producer groups about open transactions; a slow check URL never holds up sends. */
  async #runChecks(checks: DueCheck[]): Promise<void> {
    const { topic } = this.#read((s) => s.state.topicConfig());
    const queue = this.#store.state.queueId;
    await Promise.all(
      checks.map(async (due) => {
        const txId = encodeTxId({ topic, queue, id: due.id, secret: due.secret });
        const verdict = await runCheck(due, topic, txId, this.env);
        try {
          await this.#write((s, now) => {
            if (verdict === "commit" || verdict === "rollback") {
              s.transactions.endTransaction(
                due.id,
                verdict === "commit",
                now,
                `check-back ${verdict}`,
              );
            } else if (verdict === "exhausted") {
              s.transactions.endTransaction(due.id, false, now, "check-back limit reached");
            } else {
              s.transactions.deferCheck(due.id, now);
            }
          });
        } catch (e) {
          // Ended meanwhile by the producer (or the topic was deleted): its word stands.
          if (!(e instanceof EdgemqError)) throw e;
        }
      }),
    );
  }

  // ---- push subscriptions (store/push.ts, outbound/push-delivery.ts) --------

  /** Installs or updates a push subscription of this shard's topic (its group's config with it). */
  pushInstall(config: PushConfig, group: GroupConfig) {
    this.#secrets.delete(config.name);
    return answer(() => this.#write((s, now) => s.push.install(config, group, now)));
  }

  /** Stops a push subscription's deliveries from this queue; its group and offsets stay. */
  pushRemove(name: string) {
    this.#secrets.delete(name);
    return answer(() => this.#write((s) => s.push.remove(name)));
  }

  /** One subscription's delivery counters on this queue (null when not installed here). */
  pushStats(name: string) {
    return answerNow(() => this.#read((s) => s.push.stats(name)));
  }

  /** Every subscription's delivery counters on this queue. */
  pushStatsAll() {
    return answerNow(() => this.#read((s) => s.push.allStats()));
  }

  /** Runs a claim round soon (after a delivery settled: its slot is free). */
  #schedulePump(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    setTimeout(() => {
      this.#pumpQueued = false;
      this.#pump().catch((e: unknown) => console.error("edgemq: push claim failed", e));
    }, 0);
  }

  /**
   * Claims what the push subscriptions may be sent now (within the shard's
   * free fetch slots) and starts the fetches, outside the transaction and not
   * awaited: an endpoint that stalls holds its own fetch, never the alarm,
   * the shard's other writes or the other subscriptions' slots. `settled` is
   * a delivery that just ended: its settlement and the claims that take its
   * slot share one transaction (one commit per delivery, not two).
   */
  async #pump(settled?: Settled): Promise<void> {
    const active = this.#store.state.config !== null && this.#read((s) => s.push.active());
    if (!active && !settled) return;
    // A round started by an alarm or a call is a new invocation; one started
    // by a delivery's end spends what is left of its chain's.
    const wave = settled?.wave ?? { left: PUSH_DELIVERIES_PER_INVOCATION };
    const slots = Math.max(0, PUSH_FETCHES_PER_SHARD - this.#pushRunning);
    const free = active ? Math.min(slots, wave.left) : 0;
    if (free === 0 && !settled) return;
    // Reserved before the write, so two rounds at once never pass the bound.
    this.#pushRunning += free;
    let claims: PushClaim[] = [];
    try {
      claims = await this.#write((s, now) => {
        if (settled) s.push.settle(settled.claim, settled.outcome, now);
        return free > 0
          ? s.push.claim(now, free, (f) => this.#filters.get(f === "*" ? undefined : f))
          : [];
      });
    } catch (e) {
      // The topic was deleted meanwhile: nothing is left to settle or claim.
      if (!(e instanceof EdgemqError)) throw e;
    } finally {
      this.#pushRunning -= free - claims.length;
    }
    wave.left -= claims.length;
    for (const c of claims) this.ctx.waitUntil(this.#deliver(c, wave));
    // This invocation has started all it may: an alarm of its own goes on.
    if (active && wave.left === 0 && slots > 0) await this.#timers.ensureAlarm(Date.now());
  }

  /** Makes one delivery, then records how it ended; its slot goes to the next claim. */
  async #deliver(claim: PushClaim, wave: { left: number }): Promise<void> {
    let outcome: PushOutcome;
    try {
      const secrets = await this.#pushSecrets(claim.name);
      outcome = await deliver(claim, secrets, this.env.EDGEMQ_LOCAL === "1");
    } catch (e) {
      outcome = {
        ok: false,
        error: `broker error: ${String(e)}`,
        retryAfterMs: null,
        latencyMs: 0,
      };
    } finally {
      this.#pushRunning--;
    }
    await this.#pump({ claim, outcome, wave });
  }

  /**
   * A subscription's signing secrets, from the registry at most every 30 s (a
   * rotation reaches deliveries within that; the replaced secret signs 24 h
   * more, so none is refused meanwhile). Never stored in the shard.
   */
  async #pushSecrets(name: string): Promise<string[]> {
    const now = Date.now();
    const hit = this.#secrets.get(name);
    if (hit && now - hit.at < PUSH_SECRETS_TTL_MS) return hit.secrets;
    const registry = this.env.REGISTRY.get(this.env.REGISTRY.idFromName("registry"));
    const secrets = await registry.pushSecrets(name);
    this.#secrets.set(name, { secrets, at: now });
    return secrets;
  }

  // ---- watchers (hibernation-friendly long-poll; see watch/watchers.ts) -----

  /** Accepts a watcher WebSocket from the gateway; the object may hibernate while it is open. */
  override fetch(request: Request): Response {
    if (new URL(request.url).pathname === SESSION_PATH) return this.#sessions.accept(request);
    return this.#watchers.accept(request, this.#store.state.maxOffset(), (c) =>
      this.#read((s, now) => this.#watchCheck(s, now, c)),
    );
  }

  /** Parked waits, the distinct conditions they wait on, and the checks run for them so far. */
  watchStats() {
    return answerNow(() => this.#watchers.stats());
  }

  /** Tells the watchers whose wait the writes just committed may end. */
  #notify(e: WriteEffects): void {
    if (e.appendedFrom === null && !e.changed) return;
    const s = this.#store;
    const now = Date.now();
    this.#watchers.notify(
      s.state.maxOffset(),
      {
        appendedFrom: e.appendedFrom,
        // A change recorded without its groups concerns every group's waits.
        changedGroups: e.changed && e.changedGroups.size === 0 ? "all" : e.changedGroups,
      },
      (c) => this.#watchCheck(s, now, c),
    );
    // Only appends: subscribed sessions look at the new messages only.
    this.#sessions.notify(
      !e.changed && e.appendedFrom !== null ? { appendedFrom: e.appendedFrom } : undefined,
    );
  }

  /** Whether a wait may be over (each a bounded scan that reads no body it passes over). */
  #watchCheck(s: ShardStore, now: number, c: WatchCondition): boolean {
    const f = this.#filters.get(c.filter);
    if (c.kind === "pull") return s.log.hasPullable(c.from, f, now);
    return c.since === null
      ? s.receiving.hasReceivable(c.group, f, now)
      : s.receiving.hasReceivableSince(c.group, f, now, c.since);
  }

  /** Sockets by kind: sessions speak (sessions/hub.ts); watchers never need to say anything. */
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (this.#sessions.owns(ws)) await this.#sessions.message(ws, message);
  }

  override webSocketClose(ws: WebSocket): void {
    if (this.#sessions.owns(ws)) this.#sessions.closed(ws);
    else this.#watchers.closed(ws);
    closeQuietly(ws, 1000, "bye");
  }

  override webSocketError(ws: WebSocket): void {
    if (this.#sessions.owns(ws)) this.#sessions.closed(ws);
    else this.#watchers.closed(ws);
    closeQuietly(ws, 1011, "error");
  }
}
