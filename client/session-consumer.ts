/**
 * Receiving over sessions: a receive-mode subscription of one group on one
 * topic holds a session to every queue of the topic. The shard pushes
 * claimed messages (each with its receipt) as soon as they are appended or
 * become visible again, within the credit this side gives, so there is no
 * long-poll and no claim round trip. Pushed messages wait in a buffer until
 * `receive` takes them.
 *
 * Credit: `receive(max)` tops every queue's window up to `max` messages
 * (or the caller's prefetch window)
 * (pushed or promised), so at most queues × max messages are claimed ahead
 * of the application; they stay invisible to the group meanwhile, and come
 * back after their invisible time if this consumer goes away.
 *
 * Acks, nacks and invisibility changes go over the queue's session (the
 * shard answers an ack of a receipt it pushed at once and writes it within
 * ~20 ms, see docs/protocol.md), or over HTTP when that session is down:
 * receipts are the same on both.
 */
import { EdgemqError } from "../src/protocol/errors.ts";
import { parseReceipt } from "../src/protocol/ids.ts";
import type { ServerFrame } from "../src/protocol/session.ts";
import type { AckResult, Message } from "../src/protocol/types.ts";
import { QueueSession, type SocketOpener, sessionError } from "./session.ts";
import type { RouteCache } from "./session-producer.ts";
import type { TokenSource } from "./transport.ts";

/** Closes the sessions when nothing called `receive` for this long (claims ahead then lapse). */
const IDLE_CLOSE_MS = 10_000;

export interface ReceiveSubscriptionOptions {
  opener: SocketOpener;
  token?: TokenSource;
  routes: RouteCache;
  group: string;
  topic: string;
  /** null: every message. */
  filter: string | null;
  invisibleMs: number;
}

interface Queue {
  session: QueueSession;
  /** Credit given and not yet used by pushes (as far as this side knows). */
  outstanding: number;
  /** Buffered messages from this queue. */
  buffered: number;
  /** The window last asked for. */
  window: number;
}

/** One group's receive-mode subscription to one topic; see the module notes. */
export class ReceiveSubscription {
  readonly topic: string;
  readonly filter: string | null;
  readonly invisibleMs: number;
  readonly #o: ReceiveSubscriptionOptions;
  readonly #queues = new Map<number, Queue>();
  readonly #buffer: Message[] = [];
  #wake: (() => void) | null = null;
  #starting: Promise<void> | null = null;
  #receiving = 0;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: ReceiveSubscriptionOptions) {
    this.#o = options;
    this.topic = options.topic;
    this.filter = options.filter;
    this.invisibleMs = options.invisibleMs;
  }

  /** Messages pushed and not yet taken. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /**
   * Opens a session to every queue. Later growth of the topic is pushed by
   * the shards (`route` frames), so an idle subscription polls nothing.
   */
  async #start(): Promise<void> {
    if (this.#queues.size > 0) return;
    this.#starting ??= (async () => {
      const n = await this.#o.routes.queues(this.topic);
      for (let q = 0; q < n; q++) if (!this.#queues.has(q)) this.#open(q);
    })().finally(() => (this.#starting = null));
    await this.#starting;
  }

  #open(queue: number): void {
    const entry: Queue = { session: null!, outstanding: 0, buffered: 0, window: 0 };
    entry.session = new QueueSession({
      opener: this.#o.opener,
      ...(this.#o.token !== undefined && { token: this.#o.token }),
      topic: this.topic,
      queue,
      group: this.#o.group,
      onReady: (ready) => {
        this.#o.routes.learn(this.topic, ready.queues);
        const credit = Math.max(0, entry.window - entry.buffered);
        entry.outstanding = credit;
        entry.session
          .request({
            type: "subscribe",
            mode: "receive",
            ...(this.filter !== null && { filter: this.filter }),
            invisibleMs: this.invisibleMs,
            credit,
          })
          .catch(() => {
            // Lost again, or refused: onLost says so; the next ready subscribes again.
          });
      },
      onMessages: (frame) => {
        entry.outstanding = Math.max(0, entry.outstanding - frame.messages.length);
        entry.buffered += frame.messages.length;
        this.#buffer.push(...frame.messages);
        const wake = this.#wake;
        this.#wake = null;
        wake?.();
      },
      onLost: () => {
        entry.outstanding = 0;
      },
      onRoute: (queues) => this.#grow(queues),
    });
    this.#queues.set(queue, entry);
    entry.session.hold();
  }

  /** The topic grew: sessions to its new queues, with the current window. */
  #grow(queues: number): void {
    this.#o.routes.learn(this.topic, queues);
    const window = Math.max(0, ...[...this.#queues.values()].map((q) => q.window));
    for (let q = 0; q < queues; q++) {
      if (!this.#queues.has(q) && !this.#closed) {
        this.#open(q);
        this.#queues.get(q)!.window = window;
      }
    }
  }

  /** Tops every queue's window up to `window` messages (pushed, buffered or promised). */
  #topUp(window: number): void {
    // Credit goes back in steps of at least half the window (or when none is
    // left): a stream then costs the shard a credit frame per few messages,
    // not one per message.
    const step = Math.max(1, Math.ceil(window / 2));
    for (const q of this.#queues.values()) {
      q.window = window;
      const want = window - q.outstanding - q.buffered;
      const dry = q.outstanding + q.buffered === 0;
      if (want > 0 && (want >= step || dry) && q.session.post({ type: "credit", n: want })) {
        q.outstanding += want;
      }
    }
  }

  /**
   * Up to `max` messages, waiting up to `waitMs` for the first. Whatever
   * else arrives in the same turn comes too.
   */
  async receive(
    max: number,
    waitMs: number,
    signal?: AbortSignal,
    window = max,
  ): Promise<Message[]> {
    if (this.#closed) throw new EdgemqError("BAD_REQUEST", "the consumer is closed");
    this.#receiving++;
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    try {
      await this.#start();
      for (const q of this.#queues.values()) q.session.hold();
      try {
        this.#topUp(window);
        if (this.#buffer.length === 0 && waitMs > 0) await this.#waitForPush(waitMs, signal);
        if (signal?.aborted) throw signal.reason;
        const out = this.#buffer.splice(0, max);
        for (const m of out) {
          const q = this.#queues.get(m.queue);
          if (q) q.buffered = Math.max(0, q.buffered - 1);
        }
        // What was taken is room for more.
        if (out.length) this.#topUp(window);
        return out;
      } finally {
        for (const q of this.#queues.values()) q.session.release();
      }
    } finally {
      if (--this.#receiving === 0 && !this.#closed) {
        this.#idleTimer = setTimeout(() => this.#idle(), IDLE_CLOSE_MS);
        (this.#idleTimer as unknown as { unref?: () => void }).unref?.();
      }
    }
  }

  #waitForPush(waitMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      // Aborted already (a shutdown while this receive was starting): no abort event will come.
      if (signal?.aborted) {
        resolve();
        return;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        if (this.#wake === wake) this.#wake = null;
        resolve();
      };
      // A push that lands in the same turn as others comes with them.
      const wake = () => setTimeout(done, 0);
      this.#wake = wake;
      timer = setTimeout(done, waitMs);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** Nobody receives: the sessions close (claimed-ahead messages lapse back to the group). */
  #idle(): void {
    this.#idleTimer = undefined;
    if (this.#receiving > 0) return;
    for (const q of this.#queues.values()) q.session.close();
    this.#queues.clear();
  }

  /** The session of a message's queue when it is ready, else undefined (use HTTP). */
  sessionFor(message: Message): QueueSession | undefined {
    const s = this.#queues.get(message.queue)?.session;
    return s?.readyFrame ? s : undefined;
  }

  /**
   * Settles receipts of one queue over its session; undefined when that
   * session is not ready (the caller uses HTTP).
   */
  async settle(
    kind: "ack" | "nack",
    queue: number,
    receipts: string[],
    extra: { delayMs?: number },
  ): Promise<AckResult[] | undefined> {
    const s = this.#queues.get(queue)?.session;
    if (!s?.readyFrame) return undefined;
    try {
      const answer = await s.request<Extract<ServerFrame, { type: "acked" | "nacked" }>>({
        type: kind,
        receipts,
        ...(extra.delayMs !== undefined && { delayMs: extra.delayMs }),
      });
      return answer.results;
    } catch (e) {
      if (EdgemqError.from(e)?.details?.network) return undefined;
      throw e;
    }
  }

  /** Moves one receipt's invisible time over its session; undefined when that session is not ready. */
  async changeInvisibility(receipt: string, invisibleMs: number): Promise<string | undefined> {
    const { queue } = parseReceipt(receipt);
    const s = this.#queues.get(queue)?.session;
    if (!s?.readyFrame) return undefined;
    let answer: { results: AckResult[] };
    try {
      answer = await s.request<Extract<ServerFrame, { type: "invisibility" }>>({
        type: "invisibility",
        receipts: [receipt],
        invisibleMs,
      });
    } catch (e) {
      if (EdgemqError.from(e)?.details?.network) return undefined;
      throw e;
    }
    const r = answer.results[0];
    if (!r) throw new EdgemqError("INTERNAL", "no result for this receipt");
    if ("error" in r) throw sessionError(r.error);
    return r.receipt;
  }

  /** Closes every session; buffered messages lapse back to the group after their invisible time. */
  close(): void {
    this.#closed = true;
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    for (const q of this.#queues.values()) q.session.close();
    this.#queues.clear();
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}
