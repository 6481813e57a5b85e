/**
 * The storage logic of one queue shard, over the Durable Object's SQLite
 * handle. No Workers APIs here beyond `SqlStorage`: the QueueShard class is a
 * thin adapter that adds waiting, alarms and RPC around it.
 *
 * ShardStore is the facade the shard uses; the work is done by one module
 * per concern under store/, sharing one StoreState (SQL handle, counters,
 * config): log.ts (append, overflow, pull, retention, purge, stats),
 * consumption.ts (group offsets, receive, ack/nack, lapses, dead letters),
 * scheduling.ts (scheduled messages, recall), transactions.ts (half
 * messages), queries.ts (by msgId, key, time).
 */
import type { MessageFilter } from "../protocol/filter.ts";
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
import {
  type AckOutcome,
  type Claimed,
  Consumption,
  type ReceiptRef,
} from "./store/consumption.ts";
import { ShardLog } from "./store/log.ts";
import { type GroupMessageStatus, Queries } from "./store/queries.ts";
import { Scheduling } from "./store/scheduling.ts";
import { StoreState } from "./store/state.ts";
import { type HalfRow, type TransactionCheckConfig, Transactions } from "./store/transactions.ts";

export type { AckOutcome, Claimed, ReceiptRef } from "./store/consumption.ts";
export type { GroupMessageStatus } from "./store/queries.ts";
export {
  HALF_COMMITTED,
  HALF_OPEN,
  HALF_ROLLED_BACK,
  type HalfRow,
  type TransactionCheckConfig,
} from "./store/transactions.ts";

export class ShardStore {
  private readonly state: StoreState;
  private readonly log: ShardLog;
  private readonly consumption: Consumption;
  private readonly scheduling: Scheduling;
  private readonly transactions: Transactions;
  private readonly queries: Queries;

  constructor(sql: SqlStorage) {
    this.state = new StoreState(sql);
    this.log = new ShardLog(this.state);
    this.consumption = new Consumption(this.state, this.log);
    this.scheduling = new Scheduling(this.state, this.log);
    this.transactions = new Transactions(this.state, this.log);
    this.queries = new Queries(this.state);
  }

  /** Creates the schema (idempotent) and loads counters and config. */
  init(): void {
    this.state.init();
  }

  /** The topic config, or TOPIC_NOT_FOUND when this shard was never configured (or deleted). */
  topicConfig(): TopicConfig {
    return this.state.topicConfig();
  }

  get queueId(): number {
    return this.state.queueId;
  }

  configure(config: TopicConfig, queue: number): void {
    this.state.configure(config, queue);
  }

  /** Records a consumer group's config snapshot (used by alarms, which have no request). */
  rememberGroup(group: GroupConfig, now: number): void {
    this.state.rememberGroup(group, now);
  }

  /** A consumer group's config as last remembered here, if any. */
  groupConfig(name: string): GroupConfig | undefined {
    return this.state.groupConfig(name);
  }

  /** Whether pulls counted deliveries that are not saved yet. */
  get deliveredUnsaved(): boolean {
    return this.state.deliveredUnsaved;
  }

  /**
   * Saves the delivered count when pulls moved it. Pulls only count in memory
   * (a pull then writes nothing, so its answer waits for no commit); the shard
   * saves the count with its next write, or on its own within a second.
   */
  saveDelivered(): void {
    this.state.saveDelivered();
  }

  /** First offset still stored (inclusive). */
  minOffset(): number {
    return this.state.minOffset();
  }

  /** Next offset to be written (exclusive). */
  maxOffset(): number {
    return this.state.maxOffset();
  }

  /**
   * Appends a batch (already validated), all or nothing: the caller runs this
   * inside one transaction, so a QUEUE_FULL thrown midway stores nothing.
   */
  append(messages: NormalizedMessage[], now: number): SendResult[] {
    return this.log.append(messages, now);
  }

  /**
   * Reads up to `max` visible messages from `offset` on. Scans at most a
   * bounded number of rows past filtered-out or expired ones, so a selective
   * filter over a huge backlog answers in bounded time with `nextOffset`
   * moved on.
   */
  pull(offset: number, max: number, filter: MessageFilter, now: number): PullResult {
    return this.log.pull(offset, max, filter, now);
  }

  /** Any message at or after `offset` that the filter would let through? (Bounded scan.) */
  hasPullable(offset: number, filter: MessageFilter, now: number): boolean {
    return this.log.hasPullable(offset, filter, now);
  }

  committedOffset(group: string): number | null {
    return this.consumption.committedOffset(group);
  }

  commitOffset(group: string, offset: number, now: number): void {
    this.consumption.commitOffset(group, offset, now);
  }

  /** The first offset stored at or after `timestamp`, or maxOffset when none is. */
  offsetForTimestamp(timestamp: number): number {
    return this.consumption.offsetForTimestamp(timestamp);
  }

  /**
   * Moves a group to `offset`, for both consumption modes: the committed pull
   * offset and the pop cursor. Outstanding receipts of the group end (their
   * messages are handed out again from the new position).
   */
  resetGroup(group: string, offset: number, now: number): number {
    return this.consumption.resetGroup(group, offset, now);
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
    return this.consumption.receive(group, max, invisibleMs, filter, now);
  }

  /** Whether a receive by `group` would hand out something now (bounded scan, claims nothing). */
  hasReceivable(group: string, filter: MessageFilter, now: number): boolean {
    return this.consumption.hasReceivable(group, filter, now);
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
    return this.consumption.hasReceivableSince(group, filter, now, from);
  }

  /** Settles receipts with three statements whatever their number (a batch of acks is the hot path). */
  ack(group: string, refs: ReceiptRef[], now: number): AckOutcome[] {
    return this.consumption.ack(group, refs, now);
  }

  nack(
    group: GroupConfig,
    refs: ReceiptRef[],
    delayMs: number | undefined,
    now: number,
  ): AckOutcome[] {
    return this.consumption.nack(group, refs, delayMs, now);
  }

  changeInvisibility(group: string, ref: ReceiptRef, invisibleMs: number, now: number): string {
    return this.consumption.changeInvisibility(group, ref, invisibleMs, now);
  }

  /**
   * Turns receipts whose invisible time lapsed into retries (visible at once,
   * as the contract says) or dead letters. Returns how many it handled and
   * whether more remain.
   */
  lapseReceipts(now: number): { handled: number; more: boolean } {
    return this.consumption.lapseReceipts(now);
  }

  /** The earliest future time a receipt lapses or a retry comes due. */
  nextVisibleAt(now: number): number | null {
    return this.consumption.nextVisibleAt(now);
  }

  /** Groups with a retry due at or before `now` (their waiters should wake). */
  groupsWithDueRetries(now: number): string[] {
    return this.consumption.groupsWithDueRetries(now);
  }

  deadLetters(group: string, limit: number): Message[] {
    return this.consumption.deadLetters(group, limit);
  }

  /** Takes dead letters (all, or those with the given msgIds) back to the group, reconsumeTimes 0. */
  resendDeadLetters(group: string, msgIds: string[] | null, now: number): string[] {
    return this.consumption.resendDeadLetters(group, msgIds, now);
  }

  nextScheduledAt(): number | null {
    return this.scheduling.nextScheduledAt();
  }

  /**
   * Moves due scheduled messages into the log in due-time order, a bounded
   * batch per call. Idempotent: a moved message's timer row is gone, so an
   * alarm that fires twice moves nothing twice.
   */
  moveDue(now: number): { moved: number; more: boolean } {
    return this.scheduling.moveDue(now);
  }

  /**
   * Recalls a scheduled message not yet moved into the log. Answers what
   * happened rather than throwing, since the gateway asks every queue and
   * all but one are expected to say `unknown`.
   */
  recall(msgId: string): "recalled" | "delivered" | "unknown" {
    return this.scheduling.recall(msgId);
  }

  oldestStoredAt(): number | null {
    return this.log.oldestStoredAt();
  }

  get lastSweep(): number {
    return this.log.lastSweep;
  }

  /** Deletes messages past retention, a bounded batch per call. */
  sweepRetention(now: number): { deleted: number; more: boolean } {
    return this.log.sweepRetention(now);
  }

  /** Deletes every stored message (and pending schedule), keeping config and moving group positions up. */
  purge(now: number): { minOffset: number } {
    return this.log.purge(now);
  }

  /**
   * Queue statistics. `expired` counts each message that will never be
   * delivered because of its expireAt exactly once: those expired at send or
   * while scheduled, those removed by retention after expiring (the counter),
   * and those still stored past their expireAt (counted live, by the index).
   */
  stats(now: number): QueueStats {
    return this.log.stats(now);
  }

  groupStats(group: string): GroupQueueStats {
    return this.consumption.groupStats(group);
  }

  /** A message by id with each known group's status, or null. */
  findById(msgId: string): (Message & { groups: Record<string, GroupMessageStatus> }) | null {
    return this.queries.findById(msgId);
  }

  findByKey(key: string, limit: number): Message[] {
    return this.queries.findByKey(key, limit);
  }

  findByTime(from: number, to: number, limit: number): Message[] {
    return this.queries.findByTime(from, to, limit);
  }

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
    return this.transactions.prepare(m, producerGroup, check, now);
  }

  half(id: number): HalfRow | undefined {
    return this.transactions.half(id);
  }

  /** Ends a half message: commit appends it to the log once; rollback discards it. */
  endTransaction(
    id: number,
    commit: boolean,
    now: number,
    reason: string,
  ): { status: "committed" | "rolledBack"; offset: number | null } {
    return this.transactions.endTransaction(id, commit, now, reason);
  }

  openHalves(limit: number): HalfRow[] {
    return this.transactions.openHalves(limit);
  }

  nextCheckAt(): number | null {
    return this.transactions.nextCheckAt();
  }

  /**
   * Claims due check-backs: each is held past its check's timeout before the
   * check runs, so a crash or a second alarm never checks it twice at once.
   */
  claimDueChecks(now: number): HalfRow[] {
    return this.transactions.claimDueChecks(now);
  }

  /** After an undecided check answered at `now`: the next one comes the producer group's interval later. */
  deferCheck(id: number, now: number): void {
    this.transactions.deferCheck(id, now);
  }
}
