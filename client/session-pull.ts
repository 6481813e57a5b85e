/**
 * Pulling over a session: one queue read by offset, with the shard pushing
 * messages from the consumer's position as soon as they are appended (pull
 * mode, docs/protocol.md), within a credit window of `max` messages. A
 * `PullConsumer` asks it for the next batch at a position; a position other
 * than where the stream stands (a seek, a rebalance) subscribes again there.
 * Pushed messages wait in a buffer until asked for; nothing is claimed, so
 * closing the stream loses nothing.
 */
import { EdgemqError } from "../src/protocol/errors.ts";
import type { ServerFrame } from "../src/protocol/session.ts";
import type { Message, PullResult } from "../src/protocol/types.ts";
import { QueueSession, type SocketOpener } from "./session.ts";
import type { TokenSource } from "./transport.ts";

export interface PullStreamOptions {
  opener: SocketOpener;
  token?: TokenSource;
  topic: string;
  queue: number;
  /** Clustering: the group (a position-less start reads from its committed offset). */
  group?: string;
  filter: string | null;
  max: number;
}

/** One queue's pull-mode session; see the module notes. */
export class PullStream {
  readonly #o: PullStreamOptions;
  readonly #session: QueueSession;
  /** Where the stream is subscribed to read next (null: not subscribed). */
  #cursor: number | null = null;
  /** Messages pushed and not yet taken, in offset order. */
  #buffer: Message[] = [];
  /** Where the shard's scan stands after the last push (past filtered-out messages). */
  #scanned = 0;
  #skipped = 0;
  #outstanding = 0;
  /** The position asked for; null: the group's committed offset. */
  #want: number | null | undefined = undefined;
  #subscribing: Promise<void> | null = null;
  #wake: (() => void) | null = null;

  constructor(options: PullStreamOptions) {
    this.#o = options;
    this.#session = new QueueSession({
      opener: options.opener,
      ...(options.token !== undefined && { token: options.token }),
      topic: options.topic,
      queue: options.queue,
      ...(options.group !== undefined && { group: options.group }),
      onReady: () => {
        // (Re)connected: subscribe again where the consumer stands (unless a pull does now).
        this.#cursor = null;
        if (this.#want !== undefined && !this.#subscribing) {
          this.#subscribeAt(this.#position()).catch(() => {});
        }
      },
      onMessages: (f) => this.#pushed(f),
      onLost: () => {
        this.#cursor = null;
        this.#outstanding = 0;
      },
    });
    this.#session.hold();
  }

  /** Messages pushed and not yet taken. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** Where the next message to hand out starts, as far as the stream knows. */
  #position(): number | null {
    if (this.#buffer.length) return this.#buffer[0]!.offset;
    return this.#cursor ?? this.#want ?? null;
  }

  #pushed(f: Extract<ServerFrame, { type: "messages" }>): void {
    this.#outstanding = Math.max(0, this.#outstanding - f.messages.length);
    this.#buffer.push(...f.messages);
    if (typeof f.nextOffset === "number") this.#scanned = f.nextOffset;
    this.#skipped += f.skipped ?? 0;
    if (this.#cursor !== null && typeof f.nextOffset === "number") this.#cursor = f.nextOffset;
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Subscribes at `offset`, one subscription change at a time. */
  #subscribeAt(offset: number | null): Promise<void> {
    const run = (this.#subscribing ?? Promise.resolve())
      .catch(() => {})
      .then(() => this.#subscribe(offset));
    const p = run.finally(() => {
      if (this.#subscribing === p) this.#subscribing = null;
    });
    this.#subscribing = p;
    return p;
  }

  async #subscribe(offset: number | null): Promise<void> {
    if (this.#cursor !== null) {
      await this.#session.request({ type: "unsubscribe" });
      this.#cursor = null;
    }
    this.#buffer = [];
    this.#skipped = 0;
    this.#outstanding = this.#o.max;
    const answer = await this.#session.request<Extract<ServerFrame, { type: "subscribed" }>>({
      type: "subscribe",
      mode: "pull",
      ...(offset !== null && { offset }),
      ...(this.#o.filter !== null && { filter: this.#o.filter }),
      credit: this.#o.max,
    });
    this.#cursor = answer.offset ?? offset ?? 0;
    this.#scanned = this.#cursor;
    if (this.#want === null) this.#want = this.#cursor;
  }

  /**
   * The next messages from `position` (undefined: the group's committed
   * offset), waiting up to `waitMs` for any; answers like a pull by offset.
   */
  async pull(
    position: number | undefined,
    waitMs: number,
    signal: AbortSignal,
  ): Promise<PullResult> {
    const want = position ?? null;
    if (this.#subscribing) await this.#subscribing.catch(() => {});
    if (this.#cursor === null || (want !== null && want !== this.#position())) {
      this.#want = want;
      await this.#subscribeAt(want);
    }
    if (this.#buffer.length === 0 && waitMs > 0 && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          if (this.#wake === done) this.#wake = null;
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        signal.addEventListener("abort", done, { once: true });
        this.#wake = done;
      });
    }
    if (signal.aborted) throw signal.reason ?? new EdgemqError("UNAVAILABLE", "aborted");
    const messages = this.#buffer.splice(0, this.#o.max);
    const skipped = this.#skipped;
    this.#skipped = 0;
    const nextOffset = this.#buffer.length
      ? this.#buffer[0]!.offset
      : messages.length
        ? Math.max(messages.at(-1)!.offset + 1, this.#scanned)
        : this.#scanned;
    this.#want = nextOffset;
    // Room again: credit back what was taken, in one step.
    const room = this.#o.max - this.#outstanding - this.#buffer.length;
    if (room >= Math.ceil(this.#o.max / 2) && this.#session.post({ type: "credit", n: room })) {
      this.#outstanding += room;
    }
    return { messages, nextOffset, skipped, minOffset: Number.NaN, maxOffset: Number.NaN };
  }

  close(): void {
    this.#session.close();
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}
