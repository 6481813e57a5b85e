/**
 * edgemq's client SDK (`edgemq/client`): producers, consumers and admin over
 * the HTTP contract, or over a Service Binding from a Worker. Runs in
 * browsers, Workers, Node >= 20 and Deno: it uses only fetch, Web Crypto,
 * AbortController, setTimeout and (for the browser outbox) IndexedDB.
 *
 * ```ts
 * import { Producer, PushConsumer } from "edgemq/client";
 *
 * const producer = new Producer({ endpoint: "https://mq.example.com", token });
 * await producer.send({ topic: "orders", body: JSON.stringify(order), shardingKey: order.userId });
 *
 * const consumer = new PushConsumer({ endpoint: "https://mq.example.com", token, group: "billing" });
 * consumer.subscribe("orders", async (m) => bill(JSON.parse(m.body)));
 * ```
 *
 * Every failure is an {@link EdgemqError} whose `code` is the contract's.
 */
export { EdgemqError, ErrorStatus, type ErrorCode } from "../src/protocol/errors.ts";
export { DelayLevelsMs, Limits } from "../src/protocol/limits.ts";
export type {
  AckResult,
  Encoding,
  GroupConfig,
  GroupQueueStats,
  Message,
  MessageInput,
  OverflowPolicy,
  ProducerGroupConfig,
  PullResult,
  QueueStats,
  SendResult,
  SendStatus,
  TopicConfig,
} from "../src/protocol/types.ts";
export type {
  GroupConfigInput,
  ProducerGroupInput,
  TopicConfigInput,
} from "../src/protocol/requests/config.ts";
export type {
  ScheduleConfig,
  ScheduleInfo,
  ScheduleInput,
  ScheduleMessage,
  ScheduleRunResult,
} from "../src/protocol/schedule.ts";

export type {
  PushConfig,
  PushInfo,
  PushInput,
  PushPutResult,
  PushStats,
} from "../src/protocol/push.ts";
export { createPushHandler, type PushHandlerOptions, type PushMessage } from "./push-handler.ts";

export {
  Admin,
  type AdminOptions,
  type GroupDetails,
  type MessageGroupState,
  type QueriedMessage,
  type QueueLag,
  type TokenClaims,
  type TopicDetails,
} from "./admin.ts";
export { backoffDelay, type BackoffOptions } from "./backoff.ts";
export { type BatchOptions } from "./batcher.ts";
export { EdgemqEvent } from "./events.ts";
export {
  bodyBytes,
  bodyText,
  newMsgId,
  type ProducerMessage,
  type ProducerSendResult,
  type QueuedResult,
} from "./message.ts";
export {
  IndexedDbOffsetStore,
  MemoryOffsetStore,
  type OffsetStore,
  type QueueOffsets,
} from "./offset-store.ts";
export {
  Outbox,
  type OutboxErrorDetail,
  type OutboxOptions,
  type OutboxOverflow,
  type OutboxRecord,
  type OutboxRecordInfo,
} from "./outbox.ts";
export { Producer, type ProducerOptions } from "./producer.ts";
export { type MessageModel, PullConsumer, type PullConsumerOptions } from "./pull-consumer.ts";
export {
  type MessageHandler,
  PushConsumer,
  type PushConsumerOptions,
  type PushErrorDetail,
} from "./push-consumer.ts";
export { type RetryHook, type RetryOptions } from "./retry.ts";
export {
  type ReceiveCallOptions,
  type ReceiveConsumerOptions,
  SimpleConsumer,
  type Subscriptions,
} from "./simple-consumer.ts";
export {
  jsonResponse,
  type SignatureOptions,
  type SignedRequest,
  signatureVerifier,
} from "./signed-request.ts";
export {
  type CheckHandlerOptions,
  createCheckHandler,
  type HalfMessage,
  type LocalTransaction,
  type TransactionCheck,
  type TransactionResolution,
  type TransactionResult,
} from "./transaction.ts";
export {
  type BindingConnection,
  BindingTransport,
  type Connection,
  createTransport,
  type EdgemqBinding,
  type HttpConnection,
  HttpTransport,
  isNetworkError,
  isRetryable,
  type TokenSource,
  type Transport,
  type TransportConnection,
} from "./transport.ts";
