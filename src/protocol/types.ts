/** Wire types of the HTTP contract (`shared/api.md`), shared by the Worker and the SDK. */

export type Encoding = "utf8" | "base64";

/** A message as a producer sends it. Only `body` is required. */
export interface MessageInput {
  body: string;
  encoding?: Encoding;
  tag?: string;
  keys?: string[];
  properties?: Record<string, string>;
  shardingKey?: string;
  msgId?: string;
  delayLevel?: number;
  delayMs?: number;
  deliverAt?: number;
  priority?: number;
  expireAt?: number;
  /** W3C trace context, stored and delivered unchanged. */
  traceparent?: string;
  tracestate?: string;
}

/** A message as delivered by pull, receive or query. */
export interface Message {
  msgId: string;
  topic: string;
  queue: number;
  offset: number;
  body: string;
  encoding: Encoding;
  tag?: string;
  keys?: string[];
  properties?: Record<string, string>;
  shardingKey?: string;
  priority: number;
  expireAt?: number;
  bornAt: number;
  storedAt: number;
  reconsumeTimes: number;
  /** W3C trace context, as sent (a field of the message or the send's `traceparent` header). */
  traceparent?: string;
  tracestate?: string;
  /** Present on messages handed out by receive. */
  receipt?: string;
}

/**
 * `expired`: past its `expireAt` at send, never delivered. `dropped`: the
 * topic's overflow policy (`drop-newest`, or a lower priority or earlier
 * deadline than everything stored) discarded it on arrival.
 */
export type SendStatus = "stored" | "scheduled" | "duplicate" | "expired" | "dropped";

export interface SendResult {
  msgId: string;
  queue: number;
  offset: number | null;
  storedAt: number;
  status: SendStatus;
}

export type OverflowPolicy =
  | "reject"
  | "drop-oldest"
  | "drop-newest"
  | "drop-lowest-priority"
  | "drop-earliest-deadline";

export const OverflowPolicies: readonly OverflowPolicy[] = [
  "reject",
  "drop-oldest",
  "drop-newest",
  "drop-lowest-priority",
  "drop-earliest-deadline",
];

export interface TopicConfig {
  topic: string;
  queues: number;
  retentionMs: number;
  maxMessageBytes: number;
  maxBacklogMessages: number | null;
  maxBacklogBytes: number | null;
  overflowPolicy: OverflowPolicy;
  createdAt: number;
  updatedAt: number;
}

export interface QueueStats {
  queue: number;
  minOffset: number;
  maxOffset: number;
  messages: number;
  bytes: number;
  scheduled: number;
  dropped: number;
  expired: number;
  /** Messages written to this queue's log since it was created (sends, due scheduled messages, commits). */
  sent: number;
  /** Messages handed out from this queue by pull and receive (redeliveries count again). */
  delivered: number;
  /**
   * Rows of this queue's timer work (a scheduled message coming due, a half
   * message's check-back) that failed again and again and were set aside
   * instead of being retried forever; never decreases.
   */
  parked: number;
  /** Long-polling pulls and receives parked on this queue now (the shard adds it). */
  parkedWaits?: number;
}

export interface GroupConfig {
  group: string;
  maxReconsumeTimes: number;
  orderly: boolean;
  retryDelaysMs: number[];
  createdAt: number;
  updatedAt: number;
}

export interface ProducerGroupConfig {
  producerGroup: string;
  checkUrl: string | null;
  checkAfterMs: number;
  checkIntervalMs: number;
  maxChecks: number;
}

export interface PullResult {
  messages: Message[];
  nextOffset: number;
  minOffset: number;
  maxOffset: number;
  skipped: number;
}

export interface GroupQueueStats {
  queue: number;
  offset: number;
  maxOffset: number;
  lag: number;
  inflight: number;
  retrying: number;
  dlq: number;
  /** Messages below the group's committed offset that retention removed unread. */
  lostToRetention?: number;
}

export type AckResult =
  | { receipt: string; ok: true }
  | { receipt: string; error: { code: string; message: string } };

/** Where a transaction's half message stands. */
export type TransactionStatus = "open" | "committed" | "rolledBack";

/** One transaction as a shard reports it (the gateway adds `txId`, `topic`, `queue`). */
export interface TransactionInfo {
  /** The half message's id inside its shard (the address a txId carries). */
  id: number;
  msgId: string;
  producerGroup: string;
  status: TransactionStatus;
  createdAt: number;
  /** Check-backs made so far. */
  checks: number;
  /** When the next check-back is due (null when none will be made). */
  nextCheckAt: number | null;
  /** The random part of its txId (null for one opened before txIds had one); never shown on its own. */
  secret: string | null;
  /** Offset of the committed message; null while open or when rolled back. */
  offset: number | null;
  endedAt: number | null;
  endReason: string | null;
}
