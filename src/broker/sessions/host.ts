/**
 * What the session hub needs from its queue shard: the store modules, and
 * the shard's one write path. A session writes exactly as an RPC caller does
 * (its own transaction, in the group commit, effects recorded by the store
 * and acted on once per group), so sessions and RPC callers share commits.
 */
import type { Env } from "../../env.ts";
import type { MessageFilter } from "../../protocol/filter.ts";
import type { GroupConfig } from "../../protocol/types.ts";
import type { NormalizedMessage } from "../../protocol/validate.ts";
import type { ShardStore } from "../store/index.ts";

export interface SessionHost {
  readonly ctx: DurableObjectState;
  readonly env: Env;
  /** The shard's store, to read with (writes go through {@link write} or {@link writeNow}). */
  readonly store: ShardStore;
  /**
   * Writes in the shard's next group commit, in a transaction of its own;
   * resolves once the group ran. What is sent after that leaves once the
   * commit is durable (the output gate); {@link durable} waits for it.
   */
  write<T>(fn: (s: ShardStore, now: number) => T): Promise<T>;
  /**
   * Writes now, in a (nested) transaction of its own: inside a {@link write}
   * (a lazy write joining it, so its failure leaves the rest), or in the
   * event of a change the shard notified (a claim for a subscribed session,
   * which then commits with that change).
   */
  writeNow<T>(fn: (s: ShardStore, now: number) => T): T;
  /** Resolves once every write so far is durable. */
  durable(): Promise<void>;
  /** Refuses a batch that could take the database to its ceiling (STORAGE_FULL). */
  assertRoomFor(messages: readonly NormalizedMessage[]): void;
  /** A compiled filter for its text (null: every message), cached. */
  filter(text: string | null): MessageFilter;
  /** Records (in the registry) that the group consumes this topic, and answers its config. */
  subscribeGroup(group: string): Promise<GroupConfig>;
}
