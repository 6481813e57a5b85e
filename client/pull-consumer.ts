/**
 * A pull consumer (RocketMQ's `LitePullConsumer`): reads queues by offset and
 * commits how far it got.
 *
 * - Clustering (default): the group's members share the topic's queues. The
 *   consumer heartbeats `POST /v1/groups/{g}/heartbeat` and reads the queues
 *   the broker assigns it (split evenly over live members); offsets are
 *   committed to the broker, so another member picks up where it stopped.
 * - Broadcasting: every instance reads every queue; offsets stay on the
 *   client in an {@link OffsetStore} (in memory by default, or
 *   {@link IndexedDbOffsetStore} in a browser).
 *
 * ```ts
 * const consumer = new PullConsumer({ endpoint, token, group: "audit", topic: "orders" });
 * for (;;) {
 *   for (const m of await consumer.poll()) audit(m);  // offsets auto-commit
 * }
 * ```
 *
 * Offsets are committed (with `autoCommit`, the default) at most every
 * `autoCommitIntervalMs`, before a poll and on shutdown, and cover the
 * messages returned by earlier polls: calling `poll` again says the previous
 * messages are done. At-least-once: after a crash, messages since the last
 * commit are read again.
 *
 * Events: `error` (detail `{ error, stage }` for background heartbeat and
 * commit failures), `rebalance` (detail `{ queues }`), `skipped` (detail
 * `{ queue, skipped }` when retention removed messages before they were read).
 */
import { EdgemqError } from "../src/protocol/errors.ts";
import { Limits } from "../src/protocol/limits.ts";
import type { Message, PullResult } from "../src/protocol/types.ts";
import { checkName } from "../src/protocol/requests/fields.ts";
import { parsePull } from "../src/protocol/requests/pull.ts";
import { anySignal, sleep } from "./abort.ts";
import { EdgemqEvent } from "./events.ts";
import { newMsgId, query, seg } from "./message.ts";
import { MemoryOffsetStore, type OffsetStore, type QueueOffsets } from "./offset-store.ts";
import { requestWithRetry, type RetryOptions } from "./retry.ts";
import { type SessionOptions, type SocketOpener, sessionSetup } from "./session.ts";
import { PullStream } from "./session-pull.ts";
import { type Connection, createTransport, type TokenSource, type Transport } from "./transport.ts";

/** Clustering shares queues over the group; broadcasting gives every instance all of them. */
export type MessageModel = "clustering" | "broadcasting";

/** Options of a {@link PullConsumer}. */
export type PullConsumerOptions = Connection &
  SessionOptions & {
    group: string;
    topic: string;
    /** Default `clustering`. */
    mode?: MessageModel;
    /** This instance's id in heartbeats. Default: a random UUID. */
    clientId?: string;
    /** Filter expression: `*` (default), `TagA || TagB`, or `sql:...`. */
    filter?: string;
    /** Messages per queue per pull. Default 32. */
    max?: number;
    /** Long-poll wait. Default 20 000 ms (at most 30 000). */
    waitMs?: number;
    /** Broadcasting: where offsets are kept. Default in memory. */
    offsetStore?: OffsetStore;
    /** Broadcasting: where to start on a queue with no saved offset. Default `latest`. */
    consumeFrom?: "earliest" | "latest";
    /** Commit automatically (see the module notes). Default true. */
    autoCommit?: boolean;
    /** Default 5 000 ms. */
    autoCommitIntervalMs?: number;
    /** Clustering: heartbeat period. Default 10 000 ms (a member is dropped 30 s after its last). */
    heartbeatIntervalMs?: number;
    /** Broadcasting: how often the queue count is re-read (topics may grow). Default 30 000 ms. */
    routeRefreshMs?: number;
    retry?: RetryOptions;
  };

/** Reads queues by offset, with assignment by heartbeat or client-side offsets. */
export class PullConsumer extends EventTarget {
  readonly group: string;
  readonly topic: string;
  readonly mode: MessageModel;
  readonly clientId: string;
  readonly #transport: Transport;
  readonly #filter: string | undefined;
  readonly #max: number;
  readonly #waitMs: number;
  readonly #store: OffsetStore;
  readonly #consumeFrom: "earliest" | "latest";
  readonly #autoCommit: boolean;
  readonly #autoCommitIntervalMs: number;
  readonly #heartbeatIntervalMs: number;
  readonly #routeRefreshMs: number;
  readonly #retry: RetryOptions;
  readonly #abort = new AbortController();
  /** Queues this instance reads. */
  #queues: number[] = [];
  /** Next offset to read per queue; absent in clustering means "the group's committed offset". */
  readonly #positions = new Map<number, number>();
  /** Last committed (or loaded) offset per queue. */
  readonly #committed = new Map<number, number>();
  #started: Promise<void> | undefined;
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #lastCommit = 0;
  #lastRoute = 0;
  #rr = 0;
  #closed = false;
  readonly #session: { opener: SocketOpener; token?: TokenSource } | undefined;
  /** Over sessions: one pull-mode stream per queue held. */
  readonly #streams = new Map<number, PullStream>();

  constructor(options: PullConsumerOptions) {
    super();
    this.group = checkName(options.group, "group");
    this.topic = checkName(options.topic, "topic");
    this.mode = options.mode ?? "clustering";
    if (this.mode !== "clustering" && this.mode !== "broadcasting") {
      throw new EdgemqError("BAD_REQUEST", "mode must be clustering or broadcasting");
    }
    this.clientId = options.clientId ?? newMsgId();
    this.#transport = createTransport(options);
    this.#filter = options.filter && options.filter !== "*" ? options.filter : undefined;
    this.#max = Math.min(Math.max(options.max ?? Limits.defaultMax, Limits.minMax), Limits.maxMax);
    this.#waitMs = Math.min(Math.max(options.waitMs ?? 20_000, 0), Limits.maxWaitMs);
    // The broker's own check of the pulls this consumer will make: a bad filter fails here.
    parsePull({ group: this.group, ...(this.#filter !== undefined && { filter: this.#filter }) });
    this.#store = options.offsetStore ?? new MemoryOffsetStore();
    this.#consumeFrom = options.consumeFrom ?? "latest";
    this.#autoCommit = options.autoCommit ?? true;
    this.#autoCommitIntervalMs = options.autoCommitIntervalMs ?? 5_000;
    this.#heartbeatIntervalMs = options.heartbeatIntervalMs ?? 10_000;
    this.#routeRefreshMs = options.routeRefreshMs ?? 30_000;
    this.#retry = { ...options.retry };
    this.#session = sessionSetup(options as PullConsumerOptions & { endpoint?: string });
  }

  /** The queue's pull-mode session stream (sessions on), opened on first use. */
  #stream(queue: number): PullStream | undefined {
    if (!this.#session) return undefined;
    let s = this.#streams.get(queue);
    if (!s) {
      s = new PullStream({
        ...this.#session,
        topic: this.topic,
        queue,
        ...(this.mode === "clustering" && { group: this.group }),
        filter: this.#filter ?? null,
        max: this.#max,
      });
      this.#streams.set(queue, s);
    }
    return s;
  }

  #closeStreams(queues: Iterable<number>): void {
    for (const q of [...queues]) {
      this.#streams.get(q)?.close();
      this.#streams.delete(q);
    }
  }

  /** The queues this instance currently reads. */
  assignment(): number[] {
    return [...this.#queues];
  }

  /** Next offset to read per queue, where known. */
  positions(): QueueOffsets {
    return Object.fromEntries(this.#positions);
  }

  /**
   * Joins (clustering: first heartbeat and periodic ones; broadcasting: reads
   * the route and the saved offsets). `poll` calls it on first use.
   */
  start(): Promise<void> {
    this.#started ??= (async () => {
      if (this.mode === "clustering") {
        await this.heartbeat();
        this.#scheduleHeartbeat();
      } else {
        await this.#refreshRoute();
        const saved = await this.#store.load(this.group, this.topic);
        for (const [q, offset] of Object.entries(saved)) {
          if (!this.#positions.has(Number(q))) this.#positions.set(Number(q), offset);
          this.#committed.set(Number(q), offset);
        }
      }
    })();
    this.#started.catch(() => {
      this.#started = undefined;
    });
    return this.#started;
  }

  /**
   * Sends a heartbeat now and applies the assignment it returns: queues
   * taken away have their offsets committed first; new ones start from the
   * group's committed offset.
   */
  async heartbeat(): Promise<number[]> {
    const answer = (await requestWithRetry(
      this.#transport,
      "POST",
      `/v1/groups/${seg(this.group)}/heartbeat`,
      { clientId: this.clientId, topics: [this.topic] },
      { ...this.#retry, signal: this.#abort.signal },
    )) as { assignment?: Record<string, number[]> };
    const next = [...(answer?.assignment?.[this.topic] ?? [])].sort((a, b) => a - b);
    const removed = this.#queues.filter((q) => !next.includes(q));
    if (removed.length) {
      if (this.#autoCommit)
        await this.#commitQueues(removed).catch((error: unknown) =>
          this.#emit("error", { error, stage: "commit" }),
        );
      for (const q of removed) {
        this.#positions.delete(q);
        this.#committed.delete(q);
      }
      this.#closeStreams(removed);
    }
    const changed = removed.length > 0 || next.length !== this.#queues.length;
    this.#queues = next;
    if (changed) this.#emit("rebalance", { queues: [...next] });
    return [...next];
  }

  /**
   * Reads the next messages from the queues held, waiting up to `waitMs` for
   * any. Messages of one queue come in offset order. Resolves `[]` when
   * nothing came in time (or this instance holds no queue).
   */
  async poll(signal?: AbortSignal): Promise<Message[]> {
    if (this.#closed) throw new EdgemqError("BAD_REQUEST", "the consumer is shut down");
    const stop = anySignal([signal, this.#abort.signal])!;
    await this.start();
    if (this.mode === "broadcasting" && Date.now() - this.#lastRoute > this.#routeRefreshMs) {
      await this.#refreshRoute().catch((error: unknown) =>
        this.#emit("error", { error, stage: "route" }),
      );
    }
    if (this.#autoCommit && Date.now() - this.#lastCommit >= this.#autoCommitIntervalMs) {
      await this.commit().catch((error: unknown) =>
        this.#emit("error", { error, stage: "commit" }),
      );
    }
    const queues = this.#queues;
    if (queues.length === 0) {
      // Nothing assigned (more members than queues): wait as a long-poll would.
      await sleep(this.#waitMs, stop).catch(() => {});
      if (signal?.aborted) throw signal.reason;
      return [];
    }
    // All held queues are long-polled together; the broker answers at once
    // for queues with messages. The first answer with messages wins, and
    // whatever else arrived by the next turn of the event loop is kept too.
    const rotate = this.#rr++ % queues.length;
    const order = [...queues.slice(rotate), ...queues.slice(0, rotate)];
    const race = new AbortController();
    const both = anySignal([stop, race.signal])!;
    const got: { queue: number; result: PullResult }[] = [];
    await new Promise<void>((resolve, reject) => {
      let left = order.length;
      let closing = false;
      const errors: unknown[] = [];
      for (const q of order) {
        this.#pullQueue(q, this.#waitMs, both).then(
          (result) => {
            if (race.signal.aborted) return;
            if (result.messages.length) {
              got.push({ queue: q, result });
              if (!closing) {
                closing = true;
                setTimeout(() => {
                  race.abort();
                  resolve();
                }, 0);
              }
            } else {
              this.#advance(q, result);
            }
            if (--left === 0 && !closing) resolve();
          },
          (error: unknown) => {
            if (race.signal.aborted && !stop.aborted) return;
            errors.push(error);
            if (--left === 0 && !closing) {
              if (stop.aborted) reject(signal?.aborted ? signal.reason : stop.reason);
              else if (errors.length === order.length) reject(errors[0]);
              else resolve();
            }
          },
        );
      }
    });
    const out: Message[] = [];
    for (const { queue, result } of got) {
      this.#advance(queue, result);
      out.push(...result.messages);
    }
    return out;
  }

  /** Commits the current positions: to the broker (clustering) or the offset store (broadcasting). */
  async commit(): Promise<void> {
    // Only held queues: a queue handed to another member is theirs to commit.
    await this.#commitQueues(this.#queues);
  }

  /** Moves a queue's position: the next poll reads it from `offset`. Applies to queues this instance holds. */
  seek(queue: number, offset: number): void {
    if (!Number.isSafeInteger(queue) || queue < 0 || !Number.isSafeInteger(offset) || offset < 0) {
      throw new EdgemqError("BAD_REQUEST", "queue and offset must be non-negative integers");
    }
    this.#positions.set(queue, offset);
  }

  /** Moves every held queue to its first stored message. */
  async seekToBeginning(): Promise<void> {
    await this.start();
    await Promise.all(
      this.#queues.map(async (q) => this.seek(q, (await this.#probe(q)).minOffset)),
    );
  }

  /** Moves every held queue past its last message: only new messages are read. */
  async seekToEnd(): Promise<void> {
    await this.start();
    await Promise.all(
      this.#queues.map(async (q) => this.seek(q, (await this.#probe(q)).maxOffset)),
    );
  }

  /**
   * Moves every held queue to its first message stored at or after
   * `timestamp` (Unix ms), forward or backward. Found by binary search over
   * each queue's offsets (store times grow with offsets within a queue), so
   * it needs only pull permission and leaves the group's other members alone.
   */
  async seekToTimestamp(timestamp: number | Date): Promise<void> {
    const ts = timestamp instanceof Date ? timestamp.getTime() : timestamp;
    await this.start();
    await Promise.all(this.#queues.map(async (q) => this.seek(q, await this.#offsetAt(q, ts))));
  }

  /** Stops: aborts a poll in progress, stops heartbeats and commits (with autoCommit). */
  async shutdown(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort(new DOMException("the consumer is shutting down", "AbortError"));
    if (this.#heartbeatTimer !== undefined) clearTimeout(this.#heartbeatTimer);
    this.#closeStreams(this.#streams.keys());
    if (this.#autoCommit) await this.commit();
  }

  #emit(type: string, detail: unknown): void {
    this.dispatchEvent(new EdgemqEvent(type, detail));
  }

  #scheduleHeartbeat(): void {
    if (this.#closed) return;
    this.#heartbeatTimer = setTimeout(() => {
      this.heartbeat()
        .catch((error: unknown) => {
          if (!this.#closed) this.#emit("error", { error, stage: "heartbeat" });
        })
        .finally(() => this.#scheduleHeartbeat());
    }, this.#heartbeatIntervalMs);
  }

  async #refreshRoute(): Promise<void> {
    const route = (await requestWithRetry(
      this.#transport,
      "GET",
      `/v1/topics/${seg(this.topic)}/route`,
      undefined,
      { ...this.#retry, signal: this.#abort.signal },
    )) as { queues: number };
    this.#lastRoute = Date.now();
    const queues = Array.from({ length: route.queues }, (_, i) => i);
    if (queues.length !== this.#queues.length) this.#emit("rebalance", { queues: [...queues] });
    this.#queues = queues;
  }

  #advance(queue: number, result: PullResult): void {
    if (result.skipped > 0) this.#emit("skipped", { queue, skipped: result.skipped });
    this.#positions.set(queue, result.nextOffset);
  }

  async #pullQueue(queue: number, waitMs: number, signal: AbortSignal): Promise<PullResult> {
    let offset = this.#positions.get(queue);
    if (offset === undefined && this.mode === "broadcasting") {
      // No saved offset: start where consumeFrom says.
      offset = this.#consumeFrom === "earliest" ? 0 : (await this.#probe(queue)).maxOffset;
      if (!this.#positions.has(queue)) this.#positions.set(queue, offset);
    }
    // Over a session the shard pushes from the position; no request per poll.
    // A one-shot read (waitMs 0) asks over HTTP: a stream knows only what was pushed so far.
    const stream =
      waitMs > 0 || this.#streams.get(queue)?.buffered ? this.#stream(queue) : undefined;
    if (stream) return stream.pull(offset, waitMs, signal);
    const params: Record<string, string | number | undefined> = {
      offset,
      max: this.#max,
      waitMs,
      filter: this.#filter,
      // Clustering: without an offset the broker reads from the group's committed one.
      group: this.mode === "clustering" ? this.group : undefined,
    };
    return (await requestWithRetry(
      this.#transport,
      "GET",
      `/v1/topics/${seg(this.topic)}/queues/${queue}/messages${query(params)}`,
      undefined,
      { ...this.#retry, waitMs, signal },
    )) as PullResult;
  }

  /** One message at most from `offset`, without waiting: tells min/max offsets and a store time. */
  async #probe(queue: number, offset = 0): Promise<PullResult> {
    return (await requestWithRetry(
      this.#transport,
      "GET",
      `/v1/topics/${seg(this.topic)}/queues/${queue}/messages${query({ offset, max: 1, waitMs: 0 })}`,
      undefined,
      { ...this.#retry, signal: this.#abort.signal },
    )) as PullResult;
  }

  /** The first offset whose message was stored at or after `ts`. */
  async #offsetAt(queue: number, ts: number): Promise<number> {
    const first = await this.#probe(queue, 0);
    let lo = first.minOffset;
    let hi = first.maxOffset;
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const m = (await this.#probe(queue, mid)).messages[0];
      // No visible message from mid on (or a later one is already new
      // enough): the answer is at or before mid.
      if (!m || m.storedAt >= ts) hi = mid;
      else lo = m.offset + 1;
    }
    return lo;
  }

  async #commitQueues(queues: number[]): Promise<void> {
    const dirty: QueueOffsets = {};
    for (const q of queues) {
      const pos = this.#positions.get(q);
      if (pos !== undefined && this.#committed.get(q) !== pos) dirty[q] = pos;
    }
    this.#lastCommit = Date.now();
    const entries = Object.entries(dirty).map(([q, offset]) => [Number(q), offset] as const);
    if (entries.length === 0) return;
    if (this.mode === "broadcasting") {
      await this.#store.save(this.group, this.topic, dirty);
    } else {
      await Promise.all(
        entries.map(([q, offset]) =>
          requestWithRetry(
            this.#transport,
            "PUT",
            `/v1/groups/${seg(this.group)}/topics/${seg(this.topic)}/queues/${q}/offset`,
            { offset },
            this.#retry,
          ),
        ),
      );
    }
    for (const [q, offset] of entries) this.#committed.set(q, offset);
  }
}
