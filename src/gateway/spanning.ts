/**
 * Batches that span queues are all or nothing (api.md): when one queue
 * would refuse its part (QUEUE_FULL under a `reject` bound, STORAGE_FULL
 * near its ceiling), nothing of the batch is stored on any queue.
 *
 * How: before any part is written, the gateway asks every target queue to
 * reserve room for its part (QueueShard.reserve: the part's message count,
 * bytes and storage estimate, no bodies). A queue that cannot take it
 * refuses; the others release their reservations (or let them lapse after
 * 10 s, should this gateway die between the steps) and the batch is
 * refused. When all reserved, the parts are written, each admitted under its
 * reservation, so none of them is refused.
 *
 * The fast path: when no target queue can refuse (the topic has no `reject`
 * bound and every target shard said, within the last {@link ROOM_CACHE_MS},
 * that it has plenty of room under its ceiling), the parts are written at
 * once, admitted on that word, one round trip as for a single queue.
 */
import type { ReservePart } from "../broker/queue-shard.ts";
import { batchFootprint } from "../broker/store/storage-limit.ts";
import type { TopicConfig } from "../protocol/types.ts";
import type { NormalizedMessage } from "../protocol/validate.ts";
import { TtlCache } from "./ttl-cache.ts";

/** How long a shard's word that it has plenty of room is taken (per gateway isolate). */
export const ROOM_CACHE_MS = 10_000;

/** Shards (`topic#queue`) that said they have plenty of room, for {@link ROOM_CACHE_MS}. */
export const roomCache = new TtlCache<string, true>(ROOM_CACHE_MS, 10_000);

/** Whether a queue of this topic may refuse a part for its backlog bound. */
export function hasRejectBound(config: TopicConfig): boolean {
  return (
    config.overflowPolicy === "reject" &&
    (config.maxBacklogMessages !== null || config.maxBacklogBytes !== null)
  );
}

/** What a reservation needs of a part: its messages without bodies, and its storage estimate. */
export function reservePart(messages: readonly NormalizedMessage[]): ReservePart {
  return {
    messages: messages.map((m) => ({
      msgId: m.msgId,
      clientMsgId: m.clientMsgId,
      size: m.size,
      deliverAt: m.deliverAt,
      expireAt: m.expireAt,
    })),
    footprint: batchFootprint(messages),
  };
}
