/**
 * The producer: RocketMQ 5's `Producer`, over the HTTP contract.
 *
 * ```ts
 * const producer = new Producer({ endpoint: "https://mq.example.com", token });
 * await producer.send({ topic: "orders", body: "hello", tag: "created", shardingKey: "user-42" });
 * ```
 *
 * Every message gets its msgId before its first attempt, so retries (network
 * errors, 5xx, 429) repeat the same id and the broker stores it once: a
 * retried send answers `duplicate` with the first copy's queue and offset.
 */
import { EdgemqError } from "../src/protocol/errors.ts";
import { Limits } from "../src/protocol/limits.ts";
import { parsePrepare } from "../src/protocol/requests/transactions.ts";
import { utf8Length } from "../src/protocol/requests/fields.ts";
import type { MessageInput, SendResult } from "../src/protocol/types.ts";
import { type BatchEntry, type BatchOptions, Batcher } from "./batcher.ts";
import {
  type OutgoingMessage,
  type ProducerMessage,
  type ProducerSendResult,
  prepareMessage,
  query,
  seg,
} from "./message.ts";
import { Outbox, type OutboxOptions } from "./outbox.ts";
import { requestWithRetry, type RetryHook, type RetryOptions } from "./retry.ts";
import { type LocalTransaction, runTransaction, type TransactionResult } from "./transaction.ts";
import { type SessionOptions, sessionSetup } from "./session.ts";
import {
  SessionProducer,
  acquireSessionProducer,
  releaseSessionProducer,
} from "./session-producer.ts";
import { type Connection, createTransport, isRetryable, type Transport } from "./transport.ts";

/** Options of a {@link Producer}: a connection plus tuning. */
export type ProducerOptions = Connection &
  SessionOptions & {
    /** Producer group, needed for transactions (its check URL answers check-backs). */
    producerGroup?: string;
    /**
     * Automatic batching of concurrent `send` calls over HTTP (linger, max
     * batch); `false` sends each message in its own request. Over sessions
     * batching is adaptive: a send goes out at once when nothing is in flight
     * on its queue, otherwise with the next frame.
     */
    batch?: BatchOptions | false;
    /** Retries of failed requests. */
    retry?: RetryOptions;
    /** Called before each retry (logging, metrics). */
    onRetry?: RetryHook;
    /**
     * The offline outbox (browsers; needs IndexedDB): `true` for defaults or
     * options. Messages are written to IndexedDB before any network call and
     * `send` may resolve `{ status: "queued" }`. See {@link Outbox}.
     */
    outbox?: boolean | OutboxOptions;
  };

type SendJob = OutgoingMessage;

/** Publishes messages: single, batched, ordered, delayed, transactional. */
export class Producer {
  /** The offline outbox, when enabled: `pending()`, `drain()` and events. */
  readonly outbox: Outbox | undefined;
  readonly #transport: Transport;
  readonly #retry: RetryOptions & { onRetry?: RetryHook };
  readonly #producerGroup: string | undefined;
  readonly #batcher: Batcher<SendJob, SendResult> | undefined;
  readonly #sessions: SessionProducer | undefined;
  readonly #sessionKey: string | undefined;
  #closed = false;

  constructor(options: ProducerOptions) {
    this.#transport = createTransport(options);
    this.#retry = { ...options.retry };
    if (options.onRetry) this.#retry.onRetry = options.onRetry;
    this.#producerGroup = options.producerGroup;
    const session = sessionSetup(options as ProducerOptions & { endpoint?: string });
    if (session) {
      // Producers of this process with the same broker, token and retry
      // settings share their sessions, so their sends fill the same frames.
      this.#sessionKey = `${session.key}\u0000${JSON.stringify(options.retry ?? {})}`;
      const transport = this.#transport;
      const retry = this.#retry;
      this.#sessions = acquireSessionProducer(
        this.#sessionKey,
        () =>
          new SessionProducer({
            opener: session.opener,
            ...(session.token !== undefined && { token: session.token }),
            transport,
            retry,
            post: (topic, queue, messages) => postSend(transport, topic, queue, messages, retry),
          }),
      );
    }
    if (options.batch !== false) {
      this.#batcher = new Batcher<SendJob, SendResult>(
        (_key, entries) => this.#flushBatch(entries),
        (job) => `${job.topic}\u0000${job.queue ?? ""}`,
        (job) =>
          job.message.shardingKey === undefined
            ? undefined
            : `${job.topic}\u0000${job.message.shardingKey}`,
        options.batch,
      );
    }
    if (options.outbox) {
      // A copy: the caller's options object is not ours to change.
      const outboxOptions: OutboxOptions = options.outbox === true ? {} : { ...options.outbox };
      if (outboxOptions.lingerMs === undefined && options.batch) {
        outboxOptions.lingerMs = options.batch.lingerMs;
      }
      // The outbox sends once per drain and does its own backoff, so a
      // failure resolves `send` as `queued` quickly instead of retrying here.
      // Over a session each queue's part goes as one atomic frame.
      this.outbox = new Outbox(
        (topic, queue, messages) =>
          this.#sessions
            ? this.#sessions.sendAll(
                topic,
                queue,
                messages.map((message) => ({
                  message,
                  size: utf8Length(JSON.stringify(message)) + 1,
                })),
                true,
              )
            : this.#post(topic, queue, messages, { ...this.#retry, maxAttempts: 1 }),
        outboxOptions,
      );
    }
  }

  /**
   * Sends one message. With batching on (the default), sends made within
   * the linger window share one request. Resolves with the broker's result
   * (`stored`, `scheduled`, `duplicate`, `expired`), or `queued` when an
   * outbox keeps it for later. Rejects with an {@link EdgemqError}: bad input
   * before anything is sent, or the broker's refusal, or `UNAVAILABLE` when
   * retries ran out (the msgId is in the message you can resend).
   */
  async send(message: ProducerMessage): Promise<ProducerSendResult> {
    this.#checkOpen();
    const job = prepareMessage(message);
    if (this.outbox) return (await this.outbox.enqueue([job]))[0]!;
    if (this.#sessions) return this.#sessions.send(job);
    if (this.#batcher) return this.#batcher.add(job);
    return (await this.#post(job.topic, job.queue, [job.message], this.#retry))[0]!;
  }

  /**
   * Sends messages of one topic in one request, all or nothing (RocketMQ's
   * batch send): one invalid message refuses the whole batch. Results come
   * in the messages' order. With an outbox, the messages are stored together
   * and sent by the drain (possibly with others).
   */
  async sendBatch(messages: ProducerMessage[]): Promise<ProducerSendResult[]> {
    this.#checkOpen();
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new EdgemqError("BAD_REQUEST", "sendBatch needs at least one message");
    }
    const jobs = messages.map((m, i) => {
      try {
        return prepareMessage(m);
      } catch (e) {
        const err = EdgemqError.from(e);
        if (!err) throw e;
        throw new EdgemqError(err.code, `messages[${i}]: ${err.message}`, {
          ...err.details,
          index: i,
        });
      }
    });
    const first = jobs[0]!;
    if (jobs.some((j) => j.topic !== first.topic || j.queue !== first.queue)) {
      throw new EdgemqError(
        "BAD_REQUEST",
        "all messages of a batch must go to the same topic (and queue)",
      );
    }
    if (this.outbox) return this.outbox.enqueue(jobs);
    if (this.#sessions) return this.#sessions.sendAll(first.topic, first.queue, jobs);
    return this.#post(
      first.topic,
      first.queue,
      jobs.map((j) => j.message),
      this.#retry,
    );
  }

  /**
   * Sends a transactional message: stores it as an invisible half message,
   * runs `executeLocal`, then commits or rolls back by its result
   * (`commit`, `rollback`, or `unknown` to leave it to the broker's check-back
   * at the producer group's check URL; see {@link createCheckHandler}). A
   * throw from `executeLocal` rolls back and is rethrown.
   */
  async sendInTransaction(
    message: ProducerMessage,
    executeLocal: LocalTransaction,
    options: { producerGroup?: string } = {},
  ): Promise<TransactionResult> {
    this.#checkOpen();
    const producerGroup = options.producerGroup ?? this.#producerGroup;
    if (!producerGroup) {
      throw new EdgemqError(
        "BAD_REQUEST",
        "transactions need a producerGroup (in the Producer options or here)",
      );
    }
    const job = prepareMessage(message);
    // The broker's check of a prepare (producer group name, no scheduling) before the half message goes out.
    parsePrepare(
      { message: job.message, producerGroup },
      Date.now(),
      () => job.message.msgId,
      Limits.maxMessageBytesCeiling,
    );
    return runTransaction(
      this.#transport,
      job.topic,
      job.message,
      producerGroup,
      executeLocal,
      this.#retry,
    );
  }

  /**
   * Recalls a scheduled message that is not yet due. Rejects with
   * `NOT_RECALLABLE` if it was already delivered, `MESSAGE_NOT_FOUND` if unknown.
   */
  async recall(topic: string, msgId: string): Promise<void> {
    await requestWithRetry(
      this.#transport,
      "DELETE",
      `/v1/topics/${seg(topic)}/messages/${seg(msgId)}`,
      undefined,
      this.#retry,
    );
  }

  /** Sends whatever waits in open batches now and waits for every batch in flight. */
  async flush(): Promise<void> {
    await this.#batcher?.flush();
    await this.#sessions?.flush();
  }

  /**
   * Flushes batches and stops. Further sends reject. Outbox messages not yet
   * sent stay in IndexedDB for the next producer on the same database.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.flush();
    await this.outbox?.close();
    if (this.#sessions) releaseSessionProducer(this.#sessionKey!, this.#sessions);
  }

  #checkOpen(): void {
    if (this.#closed) throw new EdgemqError("BAD_REQUEST", "the producer is closed");
  }

  /** One send request (with retries per `retry`). */
  #post(
    topic: string,
    queue: number | undefined,
    messages: MessageInput[],
    retry: RetryOptions & { onRetry?: RetryHook },
  ): Promise<SendResult[]> {
    return postSend(this.#transport, topic, queue, messages, retry);
  }

  /**
   * Sends one coalesced batch. A batch is all-or-nothing at the broker, but
   * its messages come from unrelated `send` calls, so one bad message must
   * not fail the others: when the broker names it (`details.index`), only its
   * caller gets the error and the rest go again; a batch too large is split.
   */
  async #flushBatch(entries: BatchEntry<SendJob, SendResult>[]): Promise<void> {
    if (entries.length === 0) return;
    const first = entries[0]!.item;
    try {
      const results = await this.#post(
        first.topic,
        first.queue,
        entries.map((e) => e.item.message),
        this.#retry,
      );
      entries.forEach((e, i) => e.resolve(results[i]!));
    } catch (error) {
      if (entries.length > 1 && error instanceof EdgemqError && !isRetryable(error)) {
        const index = error.details?.index;
        if (typeof index === "number" && entries[index]) {
          const bad = entries[index];
          bad.reject(error);
          return this.#flushBatch(entries.filter((e) => e !== bad));
        }
        if (error.code === "BATCH_TOO_LARGE") {
          // Halves settle on their own: a failure of one leaves the other's callers unaffected.
          const half = Math.ceil(entries.length / 2);
          for (const part of [entries.slice(0, half), entries.slice(half)]) {
            await this.#flushBatch(part).catch((e: unknown) => {
              for (const entry of part) entry.reject(e);
            });
          }
          return;
        }
      }
      throw error;
    }
  }
}

/** One send request over HTTP (with retries per `retry`). */
async function postSend(
  transport: Transport,
  topic: string,
  queue: number | undefined,
  messages: MessageInput[],
  retry: RetryOptions & { onRetry?: RetryHook },
): Promise<SendResult[]> {
  const answer = (await requestWithRetry(
    transport,
    "POST",
    `/v1/topics/${seg(topic)}/messages${query({ queue })}`,
    { messages },
    retry,
  )) as { results?: SendResult[] };
  if (!Array.isArray(answer?.results) || answer.results.length !== messages.length) {
    throw new EdgemqError("INTERNAL", "the send answer does not have one result per message");
  }
  return answer.results;
}
