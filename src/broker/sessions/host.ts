/**
 * What the session hub needs from its queue shard. The shard implements it
 * with its own write path (the group commit) and its store, so a session
 * writes exactly as an RPC caller does and shares its commits.
 */
import type { MessageFilter } from "../../protocol/filter.ts";
import type { GroupConfig, PullResult, SendResult, TopicConfig } from "../../protocol/types.ts";
import type { NormalizedMessage } from "../../protocol/validate.ts";
import type { Env } from "../../env.ts";
import type { AckOutcome, Claimed, ReceiptRef } from "../store.ts";

export interface SessionHost {
  readonly ctx: DurableObjectState;
  readonly env: Env;
  /** The topic's config; TOPIC_NOT_FOUND when the shard was never configured or was deleted. */
  topicConfig(): TopicConfig;
  queueId(): number;
  minOffset(): number;
  maxOffset(): number;

  /**
   * Runs `fn` in the shard's next group of writes (shared with RPC callers:
   * one commit for the lot) and resolves with what it returned once the
   * group ran. What is sent after that leaves once the commit is durable
   * (the output gate); {@link durable} waits for it explicitly.
   */
  write<T>(fn: () => T): Promise<T>;
  /** Resolves once every write so far is durable. */
  durable(): Promise<void>;

  /** Inside {@link write}: appends a checked batch, all or nothing (storage bound included). */
  append(messages: NormalizedMessage[], now: number): SendResult[];
  /**
   * Claims up to `max` messages for the group, in its own nested
   * transaction. Inside a write, or in the event of a change the shard
   * notified (it then commits with that change). Arms the invisibility timer.
   */
  claim(
    group: GroupConfig,
    max: number,
    invisibleMs: number,
    filter: MessageFilter,
    now: number,
  ): Claimed[];
  /** Inside {@link write}: settles receipts. */
  ack(group: string, refs: ReceiptRef[], now: number): AckOutcome[];
  /** Inside {@link write}: commits a group's pull offset. */
  commitOffset(group: string, offset: number, now: number): void;
  /** Gives receipts back for a retry (its own commit; rare next to acks). */
  nack(group: GroupConfig, refs: ReceiptRef[], delayMs: number | undefined): Promise<AckOutcome[]>;
  /** Moves one receipt's invisible time; answers the new handle. */
  changeInvisibility(group: string, ref: ReceiptRef, invisibleMs: number): Promise<string>;

  pull(offset: number, max: number, filter: MessageFilter, now: number): PullResult;
  committedOffset(group: string): number | null;
  hasReceivable(group: string, filter: MessageFilter, now: number): boolean;
  hasReceivableSince(group: string, filter: MessageFilter, now: number, from: number): boolean;
  /** The group's config as this shard knows it (remembered by receives and sessions). */
  groupConfig(group: string): GroupConfig | undefined;
  /** Records (in the registry) that the group consumes this topic, and answers its config. */
  subscribeGroup(group: string): Promise<GroupConfig>;
  /** Records a group's config (a write only when it changed). */
  rememberGroup(group: GroupConfig, now: number): void;
  /** A compiled filter for its text (null: every message), cached. */
  filter(text: string | null): MessageFilter;
}
