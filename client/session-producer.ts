/**
 * Sending over sessions. The queue of each message is chosen here, from the
 * topic's route and the same hash as the gateway (`src/protocol/routing.ts`),
 * so a message goes straight to its queue's shard.
 *
 * Adaptive batching: each queue has one send frame in flight at a time. A
 * send goes out at once when nothing is in flight on its queue's session;
 * otherwise it joins the next frame, which leaves as soon as the answer to
 * the one in flight arrives (up to 1000 messages or the frame limit). So a
 * lone send pays no linger, and a burst fills frames by itself.
 *
 * On a lost session, every unanswered send goes again, in the same order and
 * with the same msgIds, once the session is back: the broker's msgId dedup
 * makes that exactly-once. A producer whose sessions never open (a broker or
 * a network path without them) falls back to HTTP.
 */
import { EdgemqError } from "../src/protocol/errors.ts";
import { Limits } from "../src/protocol/limits.ts";
import { queueFor } from "../src/protocol/routing.ts";
import type { SessionSendResult } from "../src/protocol/session.ts";
import type { MessageInput, SendResult } from "../src/protocol/types.ts";
import { backoffDelay } from "./backoff.ts";
import type { OutgoingMessage } from "./message.ts";
import { seg } from "./message.ts";
import { requestWithRetry, type RetryOptions } from "./retry.ts";
import { QueueSession, type SocketOpener, sessionError } from "./session.ts";
import { isNetworkError, isRetryable, type TokenSource, type Transport } from "./transport.ts";

type Wire = MessageInput & { msgId: string };

/** Sends a batch to a pinned queue over HTTP (the fallback), all or nothing. */
export type HttpPost = (topic: string, queue: number, messages: Wire[]) => Promise<SendResult[]>;

/** A topic's queue count, as the gateway's route says (cached about 30 s, like RocketMQ's refresh). */
export class RouteCache {
  readonly #transport: Transport;
  readonly #retry: RetryOptions;
  readonly #routes = new Map<string, { queues: number; until: number }>();
  readonly #loading = new Map<string, Promise<number>>();

  constructor(transport: Transport, retry: RetryOptions = {}) {
    this.#transport = transport;
    this.#retry = retry;
  }

  /** The cached queue count, or undefined when it must be loaded. */
  peek(topic: string): number | undefined {
    const r = this.#routes.get(topic);
    return r && r.until > Date.now() ? r.queues : undefined;
  }

  async queues(topic: string): Promise<number> {
    const hit = this.peek(topic);
    if (hit !== undefined) return hit;
    let p = this.#loading.get(topic);
    if (!p) {
      p = (async () => {
        const r = (await requestWithRetry(
          this.#transport,
          "GET",
          `/v1/topics/${seg(topic)}/route`,
          undefined,
          this.#retry,
        )) as { queues: number };
        this.learn(topic, r.queues);
        return r.queues;
      })().finally(() => this.#loading.delete(topic));
      this.#loading.set(topic, p);
    }
    return p;
  }

  /** Takes a queue count a session's `ready` frame told. */
  learn(topic: string, queues: number): void {
    if (Number.isSafeInteger(queues) && queues > 0) {
      this.#routes.set(topic, { queues, until: Date.now() + Limits.routeCacheMs });
    }
  }
}

interface Item {
  messages: Wire[];
  size: number;
  /** Sent alone, all or nothing (sendBatch, the outbox). */
  atomic: boolean;
  attempts: number;
  deadline: number;
  /** Rejected at once when no session is ready or it is lost (the outbox retries on its own). */
  failFast: boolean;
  resolve(results: SendResult[]): void;
  reject(error: unknown): void;
}

/** Room kept in a frame for its envelope. */
const FRAME_OVERHEAD = 1024;
/** Closes an idle producer session after this long (a process is not kept alive by it for longer). */
const IDLE_CLOSE_MS = 2000;
/** A producer falls back to HTTP after this many failed first connects (no session ever ready). */
const FALLBACK_AFTER = 2;
/** How long the HTTP fallback lasts before sessions are tried again. */
const FALLBACK_MS = 60_000;

/** Options of {@link SessionProducer}. */
export interface SessionProducerOptions {
  opener: SocketOpener;
  token?: TokenSource;
  transport: Transport;
  retry: RetryOptions;
  /** The HTTP send of the same batch, for the fallback and for messages too big for a frame. */
  post: HttpPost;
}

/** One queue's sends: one frame in flight, the rest waiting for the next. */
class QueuePipeline {
  readonly session: QueueSession;
  readonly #owner: SessionProducer;
  readonly #topic: string;
  readonly #queue: number;
  readonly #waiting: Item[] = [];
  #inflight: Item[] | null = null;
  #held = false;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #connecting = false;
  #deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #drained: (() => void)[] = [];

  constructor(owner: SessionProducer, session: QueueSession, topic: string, queue: number) {
    this.#owner = owner;
    this.session = session;
    this.#topic = topic;
    this.#queue = queue;
  }

  get busy(): boolean {
    return this.#inflight !== null || this.#waiting.length > 0;
  }

  add(item: Item): void {
    this.#waiting.push(item);
    if (!this.#held) {
      this.#held = true;
      this.session.hold();
    }
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.pump();
  }

  /** Resolves once nothing waits or is in flight. */
  drained(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((r) => this.#drained.push(r));
  }

  /** Sends the next frame when none is in flight and the session is ready. */
  pump(): void {
    if (this.#inflight !== null) return;
    if (this.#waiting.length === 0) {
      this.#settled();
      return;
    }
    if (this.#owner.fallback) {
      this.#viaHttp(this.#waiting.splice(0));
      return;
    }
    const limits = this.session.limits;
    if (!limits) {
      if (this.#connecting) return;
      this.#connecting = true;
      this.#watchDeadlines();
      this.session.connect().then(
        () => {
          this.#connecting = false;
          this.pump();
        },
        (e: unknown) => {
          this.#connecting = false;
          this.#connectFailed(e);
        },
      );
      return;
    }
    const frame = this.#take(limits.maxFrameItems, limits.maxClientFrameBytes - FRAME_OVERHEAD);
    this.#inflight = frame;
    const messages = frame.flatMap((i) => i.messages);
    this.session
      .request<{ type: "sent"; id: number; results: SessionSendResult[] }>({
        type: "send",
        messages,
        ...(frame[0]!.atomic && { atomic: true }),
      })
      .then(
        (answer) => this.#answered(frame, answer.results),
        (error: unknown) => this.#failed(frame, error),
      )
      .finally(() => {
        this.#inflight = null;
        this.pump();
      });
  }

  /** The next frame's items: an atomic item alone, or singles up to the limits. */
  #take(maxItems: number, maxBytes: number): Item[] {
    const first = this.#waiting.shift()!;
    if (first.atomic) return [first];
    const out = [first];
    let bytes = first.size;
    while (out.length < maxItems && this.#waiting.length > 0) {
      const next = this.#waiting[0]!;
      if (next.atomic || bytes + next.size > maxBytes) break;
      out.push(this.#waiting.shift()!);
      bytes += next.size;
    }
    return out;
  }

  #answered(frame: Item[], results: SessionSendResult[]): void {
    let at = 0;
    for (const item of frame) {
      const mine = results.slice(at, at + item.messages.length);
      at += item.messages.length;
      if (mine.length !== item.messages.length) {
        item.reject(
          new EdgemqError("INTERNAL", "the send answer does not have one result per message"),
        );
        continue;
      }
      const bad = mine.find(
        (r): r is Extract<SessionSendResult, { error: unknown }> => "error" in r,
      );
      if (bad) {
        const err = sessionError(bad.error);
        this.#retryOrReject(item, err);
      } else {
        item.resolve(mine as SendResult[]);
      }
    }
  }

  #failed(frame: Item[], error: unknown): void {
    if (isNetworkError(error)) {
      // The session was lost with the frame unanswered: it goes again, first,
      // with the same msgIds, once the session is back.
      for (const item of frame) if (item.failFast) item.reject(error);
      this.#waiting.unshift(...frame.filter((i) => !i.failFast));
      return;
    }
    for (const item of frame) this.#retryOrReject(item, error);
  }

  #retryOrReject(item: Item, error: unknown): void {
    const max = Math.max(1, this.#owner.retry.maxAttempts ?? 4);
    if (
      !item.failFast &&
      isRetryable(error) &&
      ++item.attempts < max &&
      Date.now() < item.deadline
    ) {
      const delay = backoffDelay(item.attempts - 1, Math.random(), this.#owner.retry);
      setTimeout(() => {
        this.#waiting.unshift(item);
        this.pump();
      }, delay);
      return;
    }
    item.reject(error);
  }

  #connectFailed(error: unknown): void {
    if (!this.session.everReady && this.#owner.noteConnectFailure()) {
      this.#viaHttp(this.#waiting.splice(0));
      return;
    }
    const refused = error instanceof EdgemqError && !isRetryable(error);
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const item = this.#waiting[i]!;
      if (refused || item.failFast) {
        this.#waiting.splice(i, 1);
        item.reject(error);
      }
    }
    if (this.#waiting.length === 0) {
      this.#settled();
      return;
    }
    // The session reconnects by itself while held; try again when it is back.
    setTimeout(() => this.pump(), 50 + Math.random() * 200);
  }

  /** Rejects what waited past its deadline while the session was away. */
  #watchDeadlines(): void {
    if (this.#deadlineTimer !== undefined) return;
    this.#deadlineTimer = setTimeout(() => {
      this.#deadlineTimer = undefined;
      const now = Date.now();
      for (let i = this.#waiting.length - 1; i >= 0; i--) {
        const item = this.#waiting[i]!;
        if (item.deadline <= now) {
          this.#waiting.splice(i, 1);
          item.reject(
            new EdgemqError("UNAVAILABLE", "no session to the broker within the send timeout", {
              network: true,
            }),
          );
        }
      }
      if (this.#waiting.length > 0 && !this.session.limits) this.#watchDeadlines();
      else if (!this.busy) this.#settled();
    }, 1000);
    (this.#deadlineTimer as unknown as { unref?: () => void }).unref?.();
  }

  #viaHttp(items: Item[]): void {
    for (const item of items) {
      this.#owner.post(this.#topic, this.#queue, item.messages).then(item.resolve, item.reject);
    }
    this.#settled();
  }

  #settled(): void {
    if (this.busy) return;
    for (const r of this.#drained.splice(0)) r();
    if (this.#held) {
      this.#held = false;
      this.session.release();
      this.#idleTimer = setTimeout(() => this.session.idle(), IDLE_CLOSE_MS);
      (this.#idleTimer as unknown as { unref?: () => void }).unref?.();
    }
  }

  close(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.session.close();
  }
}

/**
 * Session producers shared by the Producers of one process that reach the
 * same broker with the same token (as RocketMQ shares one client instance per
 * process): their concurrent sends fill the same frames. Counted by holders.
 */
const shared = new Map<string, { producer: SessionProducer; holders: number }>();

/** The shared session producer for `key`, made with `make` when there is none. */
export function acquireSessionProducer(key: string, make: () => SessionProducer): SessionProducer {
  let entry = shared.get(key);
  if (!entry) shared.set(key, (entry = { producer: make(), holders: 0 }));
  entry.holders++;
  return entry.producer;
}

/** Lets go of a shared session producer; the last holder closes its sessions. */
export function releaseSessionProducer(key: string, producer: SessionProducer): void {
  const entry = shared.get(key);
  if (!entry || entry.producer !== producer) return;
  if (--entry.holders <= 0) {
    shared.delete(key);
    producer.close();
  }
}

/** The session side of a {@link Producer}: see the module notes. */
export class SessionProducer {
  readonly routes: RouteCache;
  readonly retry: RetryOptions;
  readonly #o: SessionProducerOptions;
  readonly #pipes = new Map<string, QueuePipeline>();
  #failures = 0;
  #fallbackUntil = 0;

  constructor(options: SessionProducerOptions) {
    this.#o = options;
    this.retry = options.retry;
    this.routes = new RouteCache(options.transport, options.retry);
  }

  /** Whether sends go over HTTP for now (sessions never opened). */
  get fallback(): boolean {
    return Date.now() < this.#fallbackUntil;
  }

  /** Counts a failed first connect; true when the producer now falls back to HTTP. */
  noteConnectFailure(): boolean {
    if (++this.#failures < FALLBACK_AFTER) return false;
    this.#failures = 0;
    this.#fallbackUntil = Date.now() + FALLBACK_MS;
    return true;
  }

  post(topic: string, queue: number, messages: Wire[]): Promise<SendResult[]> {
    return this.#o.post(topic, queue, messages);
  }

  #pipe(topic: string, queue: number): QueuePipeline {
    const key = `${topic}\u0000${queue}`;
    let p = this.#pipes.get(key);
    if (!p) {
      const session = new QueueSession({
        opener: this.#o.opener,
        ...(this.#o.token !== undefined && { token: this.#o.token }),
        topic,
        queue,
        onRoute: (queues) => this.routes.learn(topic, queues),
        onReady: (ready) => {
          this.routes.learn(topic, ready.queues);
          // Unanswered sends go again now (the pipeline holds them in order).
          queueMicrotask(() => p!.pump());
        },
      });
      p = new QueuePipeline(this, session, topic, queue);
      this.#pipes.set(key, p);
    }
    return p;
  }

  async #queueOf(job: OutgoingMessage): Promise<number> {
    if (job.queue !== undefined) return job.queue;
    const key = job.message.shardingKey ?? job.message.msgId;
    const cached = this.routes.peek(job.topic);
    return queueFor(key, cached ?? (await this.routes.queues(job.topic)));
  }

  #item(
    messages: Wire[],
    size: number,
    atomic: boolean,
    failFast = false,
  ): Promise<SendResult[]> & { item?: Item } {
    let item!: Item;
    const p = new Promise<SendResult[]>((resolve, reject) => {
      item = {
        messages,
        size,
        atomic,
        attempts: 0,
        failFast,
        deadline:
          Date.now() + (this.retry.timeoutMs ?? 30_000) * Math.max(1, this.retry.maxAttempts ?? 4),
        resolve,
        reject,
      };
    }) as Promise<SendResult[]> & { item?: Item };
    p.item = item;
    return p;
  }

  /** Sends one message, batched adaptively with others to its queue. */
  async send(job: OutgoingMessage): Promise<SendResult> {
    const queue = await this.#queueOf(job);
    if (job.size > 1024 * 1024 - FRAME_OVERHEAD) {
      // Too big for a frame: HTTP takes up to 4 MiB.
      return (await this.post(job.topic, queue, [job.message]))[0]!;
    }
    const p = this.#item([job.message], job.size, false);
    this.#pipe(job.topic, queue).add(p.item!);
    return (await p)[0]!;
  }

  /**
   * Sends messages of one topic, all or nothing per queue (sendBatch, the
   * outbox): each queue's part is one atomic frame. Results come in order.
   */
  async sendAll(
    topic: string,
    pinned: number | undefined,
    jobs: { message: Wire; size: number }[],
    failFast = false,
  ): Promise<SendResult[]> {
    const byQueue = new Map<number, number[]>();
    const queues = pinned === undefined ? await this.routes.queues(topic) : 0;
    jobs.forEach((j, i) => {
      const q = pinned ?? queueFor(j.message.shardingKey ?? j.message.msgId, queues);
      const list = byQueue.get(q);
      if (list) list.push(i);
      else byQueue.set(q, [i]);
    });
    const out = new Array<SendResult>(jobs.length);
    await Promise.all(
      [...byQueue].map(async ([q, idx]) => {
        const messages = idx.map((i) => jobs[i]!.message);
        const size = idx.reduce((n, i) => n + jobs[i]!.size, 0);
        let results: SendResult[];
        try {
          if (size > 1024 * 1024 - FRAME_OVERHEAD) results = await this.post(topic, q, messages);
          else {
            const p = this.#item(messages, size, true, failFast);
            this.#pipe(topic, q).add(p.item!);
            results = await p;
          }
        } catch (e) {
          // Name the caller's index of a refused message, as HTTP does.
          const err = EdgemqError.from(e);
          const index = err?.details?.index;
          if (err && typeof index === "number" && idx[index] !== undefined) {
            throw new EdgemqError(
              err.code,
              err.message.replace(/^messages\[\d+\]/, `messages[${idx[index]}]`),
              {
                ...err.details,
                index: idx[index],
              },
            );
          }
          throw e;
        }
        results.forEach((r, j) => (out[idx[j]!] = r));
      }),
    );
    return out;
  }

  /** Resolves once every send so far is answered. */
  async flush(): Promise<void> {
    while ([...this.#pipes.values()].some((p) => p.busy)) {
      await Promise.all([...this.#pipes.values()].map((p) => p.drained()));
    }
  }

  /** Closes every session (after {@link flush}). */
  close(): void {
    for (const p of this.#pipes.values()) p.close();
    this.#pipes.clear();
  }
}
