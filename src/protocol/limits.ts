/**
 * Limits of the HTTP contract and of the platform (Cloudflare's documented
 * Durable Object and Worker limits), enforced at the gateway before any
 * Durable Object is touched.
 */
export const Limits = {
  /** Topic, group and producer-group names. */
  namePattern: /^[A-Za-z0-9_-]{1,127}$/,
  /** Messages in one send request. */
  maxBatchMessages: 1000,
  /** Bytes of one send request body. */
  maxBatchBytes: 4 * 1024 * 1024,
  /** Default and hard ceiling for one message's body (a SQLite row holds 2 MB). */
  defaultMaxMessageBytes: 1024 * 1024,
  maxMessageBytesCeiling: 1024 * 1024,
  /** Properties per message, and sizes of their names and values. */
  maxProperties: 64,
  maxPropertyNameBytes: 128,
  maxPropertyValueBytes: 4096,
  maxKeys: 32,
  maxKeyBytes: 256,
  maxTagBytes: 256,
  maxShardingKeyBytes: 256,
  maxMsgIdBytes: 128,
  /** Messages per pull/receive answer. */
  minMax: 1,
  maxMax: 1000,
  defaultMax: 32,
  /** Long-poll wait. */
  maxWaitMs: 30_000,
  defaultWaitMs: 0,
  /**
   * Long-polls one scoped token (its subject) may have parked on one queue at
   * once (a receive parks on every queue of its topic); more answer 429
   * RATE_LIMITED. The admin token and Service Bindings have no such cap.
   */
  maxParkedWaitsPerToken: 64,
  /** Long-polls parked on one queue, everyone together (a shard holds 32 768 hibernatable WebSockets, sessions included). */
  maxParkedWaitsPerShard: 16_384,
  /** `Retry-After` of a long-poll refused over a cap. */
  parkedWaitRetryAfterSeconds: 5,
  /** Invisible time of a received message. */
  minInvisibleMs: 1000,
  maxInvisibleMs: 43_200_000,
  defaultInvisibleMs: 30_000,
  /** Queues per topic. */
  defaultQueues: 4,
  maxQueues: 64,
  /** Retention. */
  minRetentionMs: 1000,
  defaultRetentionMs: 72 * 3600_000,
  maxRetentionMs: 365 * 24 * 3600_000,
  /** Scheduling horizon. */
  maxDelayMs: 40 * 24 * 3600_000,
  /** The dedup window for producer-supplied msgIds. */
  dedupWindowMs: 24 * 3600_000,
  /** Priority range. */
  minPriority: 0,
  maxPriority: 9,
  defaultPriority: 4,
  /** Consumer groups. */
  defaultMaxReconsumeTimes: 16,
  maxMaxReconsumeTimes: 1000,
  maxRetryDelays: 64,
  /** Filter expression length. */
  maxFilterBytes: 4096,
  /** Query answers. */
  defaultQueryLimit: 100,
  maxQueryLimit: 1000,
  /** Receipts and ids in one ack/nack request. */
  maxReceipts: 1000,
  /** A heartbeat member is gone this long after its last heartbeat. */
  memberTimeoutMs: 30_000,
  /** Live heartbeat members per consumer group (more than any topic has queues to share). */
  maxMembersPerGroup: 256,
  /** Bytes of a request body other than a send or a DLQ resend (ack, nack, config…). */
  maxSmallBodyBytes: 64 * 1024,
  /** How long the gateway trusts its cached route and config. */
  routeCacheMs: 30_000,
  /** Stop accepting sends when a shard's database reaches this (Cloudflare: 10 GB). */
  shardStorageLimitBytes: 9.5 * 1024 ** 3,
} as const;

/** RocketMQ's delay levels, 1-based: level L is `DelayLevelsMs[L - 1]`. */
export const DelayLevelsMs = [
  1_000, 5_000, 10_000, 30_000, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000, 420_000,
  480_000, 540_000, 600_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000,
] as const;

/** Default retry delays of a consumer group: the delay levels from 10 s on. */
export const DefaultRetryDelaysMs: readonly number[] = DelayLevelsMs.slice(2);
