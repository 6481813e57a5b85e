/**
 * Shapes of the API answers the console reads (api.md), built on the wire
 * types the Worker and the SDK share (src/protocol/types.ts).
 */
import type {
  GroupConfig,
  GroupQueueStats,
  Message,
  ProducerGroupConfig,
  QueueStats,
  SendResult,
  TopicConfig,
} from "../../protocol/types.ts";

export type {
  GroupConfig,
  GroupQueueStats,
  Message,
  OverflowPolicy,
  ProducerGroupConfig,
  PullResult,
  QueueStats,
  TopicConfig,
} from "../../protocol/types.ts";

/** `GET /v1/topics` */
export interface TopicList {
  topics: TopicConfig[];
}

/** `GET /v1/topics/{topic}` */
export interface TopicDetails extends TopicConfig {
  queueStats: QueueStats[];
  groups: string[];
}

/** The body of `PUT /v1/topics/{topic}` the console sends. */
export type TopicConfigBody = Pick<
  TopicConfig,
  | "queues"
  | "retentionMs"
  | "maxMessageBytes"
  | "maxBacklogMessages"
  | "maxBacklogBytes"
  | "overflowPolicy"
>;

/** `GET /v1/groups` */
export interface GroupList {
  groups: GroupConfig[];
}

/** A live member of a consumer group (it heartbeats). */
export interface GroupMember {
  clientId: string;
  topics: string[];
  lastSeen: number;
}

/** `GET /v1/groups/{group}` */
export interface GroupDetails extends GroupConfig {
  topics: Record<string, GroupQueueStats[]>;
  members: GroupMember[];
}

/** `GET /v1/topics/{topic}/messages/{msgId}`: the message and where each group stands with it. */
export interface QueriedMessage extends Message {
  groups: Record<string, string>;
}

/** Message queries and the dead-letter queue. */
export interface MessageList {
  messages: Message[];
}

/** `POST /v1/topics/{topic}/messages` */
export interface SendResponse {
  results: SendResult[];
}

/** One open transaction of `GET /v1/topics/{topic}/transactions`. */
export interface OpenTransaction {
  txId: string;
  msgId: string;
  producerGroup: string;
  queue: number;
  createdAt: number;
  ageMs: number;
  checks: number;
  nextCheckAt: number;
}

/** `GET /v1/topics/{topic}/transactions` */
export interface TransactionList {
  transactions: OpenTransaction[];
}

/** `POST /v1/transactions/{txId}/commit|rollback` */
export interface TransactionEnd {
  status: "committed" | "rolledBack";
}

/** `PUT /v1/producer-groups/{pg}`: `signingSecret` only when one was just made. */
export interface ProducerGroupSaved extends ProducerGroupConfig {
  signingSecret?: string;
}

/** `GET /v1/producer-groups` */
export interface ProducerGroupList {
  producerGroups: ProducerGroupConfig[];
}

/** `POST /v1/groups/{group}/topics/{topic}/offsets/reset` */
export interface OffsetReset {
  offsets: { queue: number; offset: number }[];
}

/** `POST /v1/groups/{group}/dlq/resend` */
export interface DeadLetterResend {
  resent: string[];
  /** Present when shards go on resending the rest in the background. */
  continuing?: true;
}

/** `POST /v1/tokens` */
export interface MintedToken {
  token: string;
}

export type { PushConfig, PushInfo, PushPutResult, PushStats } from "../../protocol/push.ts";
export type { ScheduleInfo } from "../../protocol/schedule.ts";

/** `GET /v1/push` */
export interface PushList {
  push: import("../../protocol/push.ts").PushConfig[];
}

/** `GET /v1/schedules` (one page) */
export interface ScheduleList {
  schedules: import("../../protocol/schedule.ts").ScheduleInfo[];
  next?: string | null;
}

/** `POST /v1/schedules/{name}/run` */
export interface ScheduleRun {
  schedule: string;
  msgId: string;
  status: string;
}
