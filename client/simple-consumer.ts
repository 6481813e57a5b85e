/**
 * RocketMQ 5's `SimpleConsumer`: the application receives (pops) messages,
 * each invisible to the rest of the group for `invisibleMs`, and acks each
 * when done. A message not acked in time comes back with `reconsumeTimes` + 1.
 *
 * ```ts
 * const consumer = new SimpleConsumer({ endpoint, token, group: "billing", topic: "orders" });
 * for (const m of await consumer.receive({ waitMs: 20_000 })) {
 *   await handle(m);
 *   await consumer.ack(m);
 * }
 * ```
 */
import { EdgemqError } from "../src/protocol/errors.ts";
import { Limits } from "../src/protocol/limits.ts";
import type { AckResult, Message } from "../src/protocol/types.ts";
import { parseReceive } from "../src/protocol/requests/consume.ts";
import { checkName } from "../src/protocol/requests/fields.ts";
import { seg } from "./message.ts";
import { requestWithRetry, type RetryOptions } from "./retry.ts";
import { type SessionOptions, type SocketOpener, sessionSetup } from "./session.ts";
import { ReceiveSubscription } from "./session-consumer.ts";
import { RouteCache } from "./session-producer.ts";
import { type Connection, createTransport, type TokenSource, type Transport } from "./transport.ts";

/** Topic → filter expression (`*`, `TagA || TagB`, or `sql:...`). */
export type Subscriptions = Record<string, string>;

/** Options shared by the receive-based consumers. */
export type ReceiveConsumerOptions = Connection &
  SessionOptions & {
    /** Consumer group: members share the work. */
    group: string;
    /** One topic to consume (with `filter`), or use `subscriptions` for several. */
    topic?: string;
    /** Filter for `topic`. Default `*`. */
    filter?: string;
    /** Several topics with their filters (RocketMQ's subscription expressions). */
    subscriptions?: Subscriptions;
    /** How long a received message stays invisible to others. Default 30 000 ms. */
    invisibleMs?: number;
    /** Long-poll: how long a receive waits for a message. Default 20 000 ms (at most 30 000). */
    waitMs?: number;
    /** Retries of failed requests (acks, and receives that got no answer). */
    retry?: RetryOptions;
  };

/** Options of one {@link SimpleConsumer.receive}. */
export interface ReceiveCallOptions {
  /** Messages at most. Default 32 (1..1000). */
  max?: number;
  invisibleMs?: number;
  waitMs?: number;
  /** Only this topic (default: the subscriptions in turn). */
  topic?: string;
  /** Filter for this call instead of the subscription's. */
  filter?: string;
  /** Aborts the long-poll. */
  signal?: AbortSignal;
  /**
   * Over sessions: messages the shard may push ahead per queue, claimed and
   * waiting here for the next receive. Default `max`.
   */
  prefetch?: number;
}

/**
 * Normalizes `topic`/`filter`/`subscriptions` into one map, checking each
 * topic name and filter with the broker's rules, so a bad one fails here
 * rather than on every receive.
 */
export function subscriptionsOf(options: {
  topic?: string;
  filter?: string;
  subscriptions?: Subscriptions;
}): Subscriptions {
  const subs: Subscriptions = { ...options.subscriptions };
  if (options.topic !== undefined) subs[options.topic] = options.filter ?? "*";
  for (const [t, filter] of Object.entries(subs)) {
    checkName(t, "topic");
    parseReceive({ filter });
  }
  return subs;
}

/** Pops messages for a group and acknowledges them one by one. */
export class SimpleConsumer {
  /** The consumer group. */
  readonly group: string;
  readonly #transport: Transport;
  readonly #subs: Subscriptions;
  readonly #topics: string[];
  #next = 0;
  readonly #invisibleMs: number;
  readonly #waitMs: number;
  readonly #retry: RetryOptions;
  readonly #session: { opener: SocketOpener; token?: TokenSource } | undefined;
  readonly #routes: RouteCache;
  readonly #streams = new Map<string, ReceiveSubscription>();

  constructor(options: ReceiveConsumerOptions) {
    this.group = checkName(options.group, "group");
    this.#transport = createTransport(options);
    this.#subs = subscriptionsOf(options);
    this.#topics = Object.keys(this.#subs);
    this.#invisibleMs = options.invisibleMs ?? Limits.defaultInvisibleMs;
    this.#waitMs = Math.min(options.waitMs ?? 20_000, Limits.maxWaitMs);
    this.#retry = { ...options.retry };
    this.#session = sessionSetup(options as ReceiveConsumerOptions & { endpoint?: string });
    this.#routes = new RouteCache(this.#transport, this.#retry);
  }

  /**
   * The session subscription of a topic, when this call can be served by it:
   * sessions are on and the call's filter and invisible time are the
   * subscription's (another filter or time goes over HTTP).
   */
  #stream(
    topic: string,
    filter: string | undefined,
    invisibleMs: number,
  ): ReceiveSubscription | undefined {
    if (!this.#session) return undefined;
    const f = filter === undefined || filter === "*" || filter === "" ? null : filter;
    let sub = this.#streams.get(topic);
    if (!sub) {
      sub = new ReceiveSubscription({
        ...this.#session,
        routes: this.#routes,
        group: this.group,
        topic,
        filter: f,
        invisibleMs,
      });
      this.#streams.set(topic, sub);
    }
    return sub.filter === f && sub.invisibleMs === invisibleMs ? sub : undefined;
  }

  /**
   * Closes this consumer's sessions (messages pushed but not yet received
   * go back to the group after their invisible time). Receiving again opens
   * new ones; over HTTP there is nothing to close.
   */
  close(): void {
    for (const s of this.#streams.values()) s.close();
    this.#streams.clear();
  }

  /** The topics this consumer subscribes to, with their filters. */
  get subscriptions(): Readonly<Subscriptions> {
    return this.#subs;
  }

  /**
   * Receives up to `max` messages, waiting up to `waitMs` for the first.
   * Each carries a `receipt` for ack, nack and changeInvisibleDuration. With
   * several topics, each call asks the next topic in turn. Resolves with an
   * empty list when nothing arrived in time.
   */
  async receive(options: ReceiveCallOptions = {}): Promise<Message[]> {
    const topic = options.topic ?? this.#topics[this.#next++ % Math.max(1, this.#topics.length)];
    if (topic === undefined)
      throw new EdgemqError("BAD_REQUEST", "no topic subscribed: give topic or subscriptions");
    const waitMs = Math.min(options.waitMs ?? this.#waitMs, Limits.maxWaitMs);
    const max = options.max ?? Limits.defaultMax;
    const invisibleMs = options.invisibleMs ?? this.#invisibleMs;
    const filter = options.filter ?? this.#subs[topic];
    // A one-shot receive (waitMs 0) asks over HTTP, unless pushed messages wait here.
    const stream =
      waitMs > 0 || this.#streams.get(topic)?.buffered
        ? this.#stream(topic, filter, invisibleMs)
        : undefined;
    if (stream) {
      if (!Number.isSafeInteger(max) || max < Limits.minMax || max > Limits.maxMax) {
        throw new EdgemqError("BAD_REQUEST", `max must be an integer from 1 to ${Limits.maxMax}`);
      }
      const prefetch = Math.min(Math.max(options.prefetch ?? max, 1), Limits.maxMax);
      return stream.receive(max, waitMs, options.signal, prefetch);
    }
    const body: Record<string, unknown> = { max, invisibleMs, waitMs };
    if (filter !== undefined && filter !== "*") body.filter = filter;
    // The broker's own check of a receive, so bad options fail before the long-poll goes out.
    parseReceive(body);
    // A receive that got no answer may have popped messages that are now
    // invisible for invisibleMs; retrying is still right (they come back).
    const answer = (await requestWithRetry(
      this.#transport,
      "POST",
      `/v1/groups/${seg(this.group)}/topics/${seg(topic)}/receive`,
      body,
      { ...this.#retry, waitMs, ...(options.signal ? { signal: options.signal } : {}) },
    )) as { messages?: Message[] };
    return answer?.messages ?? [];
  }

  /** Acknowledges one message: it will not be delivered to this group again. Rejects with `RECEIPT_EXPIRED` if its invisible time lapsed. */
  async ack(message: Message): Promise<void> {
    throwIfFailed((await this.ackMany([message]))[0]);
  }

  /** Acknowledges several messages; one result per message, in order, never throwing for one receipt. */
  async ackMany(messages: Message[]): Promise<AckResult[]> {
    return this.#settle("ack", messages, {});
  }

  /**
   * Gives a message back for a retry later: after `delayMs`, or by default
   * after the group's retry delay for its `reconsumeTimes`.
   */
  async nack(message: Message, options: { delayMs?: number } = {}): Promise<void> {
    throwIfFailed((await this.nackMany([message], options))[0]);
  }

  /** Gives several messages back; one result per message, in order. */
  async nackMany(messages: Message[], options: { delayMs?: number } = {}): Promise<AckResult[]> {
    return this.#settle(
      "nack",
      messages,
      options.delayMs === undefined ? {} : { delayMs: options.delayMs },
    );
  }

  /**
   * Extends (or shortens) a message's invisible time, counted from now.
   * The broker issues a new receipt; it replaces `message.receipt` so later
   * acks use it, and is returned.
   */
  async changeInvisibleDuration(message: Message, invisibleMs: number): Promise<string> {
    const viaSession = await this.#streams
      .get(message.topic)
      ?.changeInvisibility(receiptOf(message), invisibleMs);
    if (viaSession !== undefined) {
      message.receipt = viaSession;
      return viaSession;
    }
    const answer = (await requestWithRetry(
      this.#transport,
      "POST",
      `/v1/groups/${seg(this.group)}/topics/${seg(message.topic)}/invisibility`,
      { receipt: receiptOf(message), invisibleMs },
      this.#retry,
    )) as { receipt: string };
    message.receipt = answer.receipt;
    return answer.receipt;
  }

  async #settle(
    kind: "ack" | "nack",
    messages: Message[],
    extra: Record<string, unknown>,
  ): Promise<AckResult[]> {
    // One request per topic, results put back in the caller's order.
    const byTopic = new Map<string, number[]>();
    messages.forEach((m, i) => {
      const list = byTopic.get(m.topic);
      if (list) list.push(i);
      else byTopic.set(m.topic, [i]);
    });
    const out: AckResult[] = new Array(messages.length);
    const put = (part: number[], results: AckResult[]) =>
      part.forEach((i, k) => {
        out[i] = results[k] ?? {
          receipt: receiptOf(messages[i]!),
          error: { code: "INTERNAL", message: "no result for this receipt" },
        };
      });
    await Promise.all(
      [...byTopic].map(async ([topic, all]) => {
        // Over the queues' sessions where they are up; the rest over HTTP.
        let indexes = all;
        const stream = this.#streams.get(topic);
        if (stream) {
          const byQueue = new Map<number, number[]>();
          for (const i of all) {
            const q = messages[i]!.queue;
            const list = byQueue.get(q);
            if (list) list.push(i);
            else byQueue.set(q, [i]);
          }
          const left: number[] = [];
          await Promise.all(
            [...byQueue].map(async ([q, part]) => {
              for (let start = 0; start < part.length; start += Limits.maxReceipts) {
                const chunk = part.slice(start, start + Limits.maxReceipts);
                const results = await stream.settle(
                  kind,
                  q,
                  chunk.map((i) => receiptOf(messages[i]!)),
                  extra as { delayMs?: number },
                );
                if (results) put(chunk, results);
                else left.push(...chunk);
              }
            }),
          );
          indexes = left;
        }
        // Over HTTP in bodies the broker takes (64 KiB, 1000 receipts at most).
        for (const part of settleParts(indexes, (i) => receiptOf(messages[i]!))) {
          const answer = (await requestWithRetry(
            this.#transport,
            "POST",
            `/v1/groups/${seg(this.group)}/topics/${seg(topic)}/${kind}`,
            { receipts: part.map((i) => receiptOf(messages[i]!)), ...extra },
            this.#retry,
          )) as { results: AckResult[] };
          put(part, answer.results);
        }
      }),
    );
    return out;
  }
}

/**
 * Splits receipts into requests the broker takes: at most
 * {@link Limits.maxReceipts} each, and a JSON body within
 * {@link Limits.maxSmallBodyBytes} (long topic and group names make long
 * receipts: 1000 of them can pass 64 KiB).
 */
export function settleParts<T>(items: T[], receipt: (item: T) => string): T[][] {
  // Room for the envelope (`{"receipts":[…],"delayMs":…}`) besides the receipts.
  const budget = Limits.maxSmallBodyBytes - 1024;
  const parts: T[][] = [];
  let part: T[] = [];
  let bytes = 0;
  for (const item of items) {
    // Receipts are ASCII; each costs its quotes and a comma in the array.
    const cost = receipt(item).length + 3;
    if (part.length > 0 && (part.length >= Limits.maxReceipts || bytes + cost > budget)) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(item);
    bytes += cost;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

function receiptOf(message: Message): string {
  if (typeof message.receipt !== "string") {
    throw new EdgemqError(
      "BAD_REQUEST",
      `message ${message.msgId} has no receipt: only received messages can be acked`,
    );
  }
  return message.receipt;
}

/** Turns a failed ack result into the error it carries. */
export function throwIfFailed(result: AckResult | undefined): void {
  if (result && "error" in result) {
    throw (
      EdgemqError.from({ error: result.error }) ?? new EdgemqError("INTERNAL", result.error.message)
    );
  }
}
