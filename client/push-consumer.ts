/**
 * RocketMQ 5's `PushConsumer`: give it a handler and it keeps long-polling,
 * runs the handler for each message with bounded concurrency, acks when the
 * handler returns and nacks (retry later, with the group's backoff) when it
 * throws.
 *
 * ```ts
 * const consumer = new PushConsumer({ endpoint, token, group: "billing", concurrency: 8 });
 * consumer.subscribe("orders", async (m) => { await charge(JSON.parse(m.body)); });
 * // later
 * await consumer.shutdown();
 * ```
 *
 * Orderly mode (`orderly: true`, for a group created with `orderly: true`):
 * messages with the same sharding key run one at a time, in the order
 * received; when one fails, the ones behind it in hand are given back too, so
 * none overtakes it. Messages without a sharding key run concurrently.
 *
 * Events: `error` with detail {@link PushErrorDetail} for handler failures,
 * failed acks and receive failures (the consumer keeps going).
 */
import { EdgemqError } from "../src/protocol/errors.ts";
import { Limits } from "../src/protocol/limits.ts";
import type { AckResult, Message } from "../src/protocol/types.ts";
import { parseReceive } from "../src/protocol/requests/consume.ts";
import { checkName } from "../src/protocol/requests/fields.ts";
import { sleep } from "./abort.ts";
import { type BackoffOptions, backoffDelay } from "./backoff.ts";
import { Batcher } from "./batcher.ts";
import { EdgemqEvent } from "./events.ts";
import {
  SimpleConsumer,
  type ReceiveConsumerOptions,
  subscriptionsOf,
  throwIfFailed,
} from "./simple-consumer.ts";
import { sessionSetup } from "./session.ts";
import { createTransport } from "./transport.ts";

/** Handles one message; returning acks it, throwing nacks it (retried later). */
export type MessageHandler = (message: Message) => void | Promise<void>;

/** Options of a {@link PushConsumer}. */
export type PushConsumerOptions = ReceiveConsumerOptions & {
  /** Handlers running at once (and messages held at once). Default 8. */
  concurrency?: number;
  /** One message at a time per sharding key. Default false. */
  orderly?: boolean;
  /** Handler for the topics in `topic`/`subscriptions`, started at construction. */
  handler?: MessageHandler;
  /** Waits between failed receives. Default 200 ms doubling up to 10 s. */
  backoff?: BackoffOptions;
  /** Delay of a nack after a handler failure; default: the group's retry delays. */
  nackDelayMs?: number;
  /**
   * Over sessions: messages each queue's shard may push ahead of the
   * handlers (claimed, waiting here for a free slot). Default: 32, or the
   * concurrency when larger. Bigger windows claim in bigger batches.
   */
  prefetch?: number;
};

/** Detail of `error` events. */
export interface PushErrorDetail {
  error: unknown;
  /** `handler`: the handler threw (the message was nacked); `ack`/`nack`: settling failed; `receive`: polling failed. */
  stage: "handler" | "ack" | "nack" | "receive";
  topic?: string;
  message?: Message;
}

/** Counts free handler slots; receives never ask for more messages than there are slots. */
class Slots {
  #free: number;
  #waiters: (() => void)[] = [];

  constructor(n: number) {
    this.#free = n;
  }

  get free(): number {
    return this.#free;
  }

  /** Takes between 1 and `max` slots, waiting until at least one is free. */
  async take(max: number, signal: AbortSignal): Promise<number> {
    while (this.#free <= 0) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal.reason);
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
        this.#waiters.push(() => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    }
    const n = Math.min(max, this.#free);
    this.#free -= n;
    return n;
  }

  /** Gives back `n` slots (negative: takes more without waiting). */
  release(n: number): void {
    this.#free += n;
    for (const w of this.#waiters.splice(0)) w();
  }
}

interface Settle {
  message: Message;
  size: number;
}

/** Consumes continuously with a handler. */
export class PushConsumer extends EventTarget {
  /** The consumer group. */
  readonly group: string;
  readonly #consumer: SimpleConsumer;
  readonly #concurrency: number;
  readonly #orderly: boolean;
  readonly #backoff: BackoffOptions;
  readonly #nackDelayMs: number | undefined;
  readonly #prefetch: number;
  readonly #slots: Slots;
  readonly #abort = new AbortController();
  readonly #loops = new Set<Promise<void>>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #chains = new Map<string, Promise<void>>();
  readonly #failedKeys = new Set<string>();
  readonly #acks: Batcher<Settle, AckResult>;
  readonly #nacks: Batcher<Settle, AckResult>;
  readonly #topics = new Set<string>();
  #stopping: Promise<void> | undefined;

  constructor(options: PushConsumerOptions) {
    super();
    this.group = checkName(options.group, "group");
    const transport = createTransport(options);
    // Sessions (where they exist) carry the receives and settles, one per queue.
    const session = sessionSetup(options as PushConsumerOptions & { endpoint?: string });
    const receiveOptions: ReceiveConsumerOptions = {
      transport,
      group: options.group,
      subscriptions: {},
      ...(session
        ? {
            sessionOpener: session.opener,
            ...(session.token !== undefined && { token: session.token }),
          }
        : { sessions: false }),
    };
    if (options.invisibleMs !== undefined) receiveOptions.invisibleMs = options.invisibleMs;
    if (options.waitMs !== undefined) receiveOptions.waitMs = options.waitMs;
    if (options.retry !== undefined) receiveOptions.retry = options.retry;
    this.#consumer = new SimpleConsumer(receiveOptions);
    this.#concurrency = Math.max(1, Math.floor(options.concurrency ?? 8));
    this.#orderly = options.orderly ?? false;
    this.#backoff = { baseMs: 200, maxMs: 10_000, ...options.backoff };
    this.#nackDelayMs = options.nackDelayMs;
    this.#prefetch = Math.min(
      Math.max(1, Math.floor(options.prefetch ?? Math.max(32, this.#concurrency))),
      Limits.maxMax,
    );
    this.#slots = new Slots(this.#concurrency);
    // Acks of messages finishing together share a request; over sessions they
    // also wait 2 ms for company (the shard writes them lazily anyway), which
    // saves the shard an event per message under a steady stream.
    this.#acks = new Batcher<Settle, AckResult>(
      async (_topic, entries) => {
        const results = await this.#consumer.ackMany(entries.map((e) => e.item.message));
        entries.forEach((e, i) => e.resolve(results[i]!));
      },
      (s) => s.message.topic,
      undefined,
      { lingerMs: session ? 2 : 0, maxMessages: Limits.maxReceipts },
    );
    this.#nacks = new Batcher<Settle, AckResult>(
      async (_topic, entries) => {
        const opts = this.#nackDelayMs === undefined ? {} : { delayMs: this.#nackDelayMs };
        const results = await this.#consumer.nackMany(
          entries.map((e) => e.item.message),
          opts,
        );
        entries.forEach((e, i) => e.resolve(results[i]!));
      },
      (s) => s.message.topic,
      undefined,
      { lingerMs: 0, maxMessages: Limits.maxReceipts },
    );
    if (options.handler) {
      for (const [topic, filter] of Object.entries(subscriptionsOf(options))) {
        this.subscribe(topic, options.handler, { filter });
      }
    }
  }

  /** Messages being handled (or held waiting for their sharding key's turn). */
  get inflight(): number {
    return this.#concurrency - this.#slots.free;
  }

  /**
   * Starts consuming `topic` with `handler`. `filter`: `*` (default),
   * `TagA || TagB`, or `sql:...`.
   */
  subscribe(topic: string, handler: MessageHandler, options: { filter?: string } = {}): this {
    if (this.#stopping) throw new EdgemqError("BAD_REQUEST", "the consumer is shut down");
    checkName(topic, "topic");
    // A bad filter fails here, with the broker's error, not in the receive loop.
    if (options.filter !== undefined) parseReceive({ filter: options.filter });
    if (this.#topics.has(topic))
      throw new EdgemqError("BAD_REQUEST", `already subscribed to ${topic}`);
    this.#topics.add(topic);
    const loop = this.#loop(topic, options.filter ?? "*", handler);
    this.#loops.add(loop);
    return this;
  }

  /**
   * Stops receiving (aborting long-polls), lets handlers in flight finish,
   * acks (or nacks) them, and resolves when all is settled.
   */
  shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#abort.abort(new DOMException("the consumer is shutting down", "AbortError"));
      await Promise.all(this.#loops);
      while (this.#inflight.size) await Promise.all(this.#inflight);
      await Promise.all([this.#acks.flush(), this.#nacks.flush()]);
      this.#consumer.close();
    })();
    return this.#stopping;
  }

  #emitError(detail: PushErrorDetail): void {
    this.dispatchEvent(new EdgemqEvent("error", detail));
  }

  async #loop(topic: string, filter: string, handler: MessageHandler): Promise<void> {
    const signal = this.#abort.signal;
    let failures = 0;
    while (!signal.aborted) {
      let taken = 0;
      try {
        // Several topics share the slots; no loop takes more than its share
        // while it long-polls, so one idle topic cannot starve another.
        const share = Math.max(1, Math.ceil(this.#concurrency / this.#topics.size));
        taken = await this.#slots.take(Math.min(share, Limits.maxMax), signal);
        const messages = await this.#consumer.receive({
          topic,
          filter,
          max: taken,
          signal,
          prefetch: this.#prefetch,
        });
        failures = 0;
        // Unused slots go back; should the broker ever send more than asked,
        // the count goes below zero and receiving waits until it recovers.
        this.#slots.release(taken - messages.length);
        taken = 0;
        for (const m of messages) this.#dispatch(m, handler);
      } catch (error) {
        if (taken) this.#slots.release(taken);
        if (signal.aborted) break;
        this.#emitError({ error, stage: "receive", topic });
        await sleep(backoffDelay(failures++, Math.random(), this.#backoff), signal).catch(() => {});
      }
    }
  }

  #dispatch(message: Message, handler: MessageHandler): void {
    const key =
      this.#orderly && message.shardingKey !== undefined
        ? `${message.topic}\u0000${message.shardingKey}`
        : undefined;
    const run = async (): Promise<void> => {
      let released = false;
      try {
        if (key !== undefined && this.#failedKeys.has(key)) {
          // An earlier message of this key failed and goes back for a retry;
          // handling this one now would overtake it.
          await this.#settle("nack", message);
          return;
        }
        try {
          await handler(message);
        } catch (error) {
          if (key !== undefined) this.#failedKeys.add(key);
          this.#emitError({ error, stage: "handler", topic: message.topic, message });
          await this.#settle("nack", message);
          return;
        }
        // Handled: the slot is free for the next message while the ack goes
        // out (a failed ack is an error event; the message then comes back).
        released = true;
        this.#slots.release(1);
        await this.#settle("ack", message);
      } finally {
        if (!released) this.#slots.release(1);
      }
    };
    let job: Promise<void>;
    if (key !== undefined) {
      job = (this.#chains.get(key) ?? Promise.resolve()).then(run);
      this.#chains.set(key, job);
      void job.then(() => {
        if (this.#chains.get(key) === job) {
          this.#chains.delete(key);
          this.#failedKeys.delete(key);
        }
      });
    } else {
      job = run();
    }
    this.#inflight.add(job);
    void job.then(() => this.#inflight.delete(job));
  }

  /** Acks or nacks through the shared batchers; failures become `error` events, never rejections. */
  async #settle(kind: "ack" | "nack", message: Message): Promise<void> {
    try {
      const batcher = kind === "ack" ? this.#acks : this.#nacks;
      throwIfFailed(await batcher.add({ message, size: 0 }));
    } catch (error) {
      this.#emitError({ error, stage: kind, topic: message.topic, message });
    }
  }
}
