/**
 * The gateway's broker service: the NameServer role (cached routes and
 * config) and the fan-out over a topic's queue shards. Routes and the RPC
 * entrypoint both call this, so HTTP and Service Binding clients get the same
 * behaviour. Requests arrive parsed (src/protocol/requests/); what is checked
 * here needs the topic's config: queue counts, the topic's message size limit,
 * and whether a receipt addresses a queue of the path's topic and group.
 */
import { type Outcome, unwrap } from "../broker/outcome.ts";
import type {
  QueueShard,
  Sender,
  ShardPullOptions,
  SpanningPart,
  TxCaller,
} from "../broker/queue-shard.ts";
import type { Env } from "../env.ts";
import { type AnswerBytes, WHOLE_ANSWER } from "../protocol/encoded-size.ts";
import { EdgemqError, badRequest } from "../protocol/errors.ts";
import { filterText } from "../protocol/filter.ts";
import { encodeReceipt, encodeTxId, parseTxId } from "../protocol/ids.ts";
import { Limits } from "../protocol/limits.ts";
import type { Receipt, ReceiveRequest } from "../protocol/requests/consume.ts";
import { type NormalizedMessage, checkMessageSize } from "../protocol/requests/message.ts";
import type { ResetTarget } from "../protocol/requests/offsets.ts";
import type { PullRequest } from "../protocol/requests/pull.ts";
import type { SendRequest } from "../protocol/requests/send.ts";
import type { PrepareRequest } from "../protocol/requests/transactions.ts";
import { queueFor } from "../protocol/routing.ts";
import type {
  AckResult,
  GroupConfig,
  GroupQueueStats,
  Message,
  ProducerGroupConfig,
  PullResult,
  SendResult,
  TopicConfig,
} from "../protocol/types.ts";
import type { TopicRegistry } from "../registry/topic-registry.ts";
import { mergeInTurn, mergeOrdered, shareOf } from "./fan-out.ts";
import { hasRejectBound, reservePart, roomCache } from "./spanning.ts";
import { PushService } from "./push-service.ts";
import { ShardWatch } from "./shard-watch.ts";
import { TtlCache } from "./ttl-cache.ts";

/**
 * Isolate-wide caches, every fact for the route refresh of RocketMQ clients
 * (about 30 s): a change made through another isolate is seen here within
 * that time. `subscribed` holds the group/topic pairs this isolate recorded
 * in the registry; it expires too, so a group deleted (and recreated)
 * elsewhere gets its subscriptions recorded again, and its topics come back
 * in DLQ views, stats and metrics.
 */
const CACHE_ENTRIES = 10_000;
const topicCache = new TtlCache<string, TopicConfig>(Limits.routeCacheMs, CACHE_ENTRIES);
const groupCache = new TtlCache<string, GroupConfig>(Limits.routeCacheMs, CACHE_ENTRIES);
const subscribed = new TtlCache<string, true>(Limits.routeCacheMs, CACHE_ENTRIES);
const subscription = (group: string, topic: string) => `${group}\u0000${topic}`;
let rotation = 0;

/** Calls a Durable Object, turning RPC errors back into EdgemqError. */
export async function rpc<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw EdgemqError.from(e) ?? diskFull(e) ?? unavailable(e) ?? e;
  }
}

/**
 * A Durable Object error the platform marks `retryable` (a connection to the
 * object dropped), `durableObjectReset` (the object was reset: its code was
 * updated, or it broke and restarted, and the stub held for it is spent) or
 * `overloaded` (too many requests for one object): a passing state, not a
 * bug, so the answer is 503 UNAVAILABLE with `Retry-After` (longer when
 * overloaded, where retrying at once makes it worse) rather than a 500. The
 * request may or may not have been applied, as after any network failure: a
 * send retried with its msgId is deduplicated.
 */
export function unavailable(e: unknown): EdgemqError | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  const flags = e as { retryable?: unknown; overloaded?: unknown; durableObjectReset?: unknown };
  if (flags.overloaded === true) {
    return new EdgemqError("UNAVAILABLE", "the broker is overloaded; retry later", {
      retryAfterSeconds: 5,
    });
  }
  if (flags.retryable === true || flags.durableObjectReset === true) {
    return new EdgemqError("UNAVAILABLE", "the broker was briefly unavailable; retry", {
      retryAfterSeconds: 1,
    });
  }
  return undefined;
}

/**
 * SQLite's "database or disk is full" (a full local disk): the write was
 * rolled back, so nothing of it is stored and a retry once space is freed is
 * safe. Answered as 507 STORAGE_FULL rather than a bare 500.
 */
function diskFull(e: unknown): EdgemqError | undefined {
  if (!(e instanceof Error) || !/SQLITE_FULL/.test(e.message)) return undefined;
  return new EdgemqError(
    "STORAGE_FULL",
    "the broker's disk is full (SQLITE_FULL): nothing of this request was stored; retry once space is freed",
  );
}

/**
 * Who a long-poll waits for: `sender` (auth.ts `senderSpace`) counts it
 * against a scoped token's cap on parked waits; `signal` (the client's
 * request) ends it when the client is gone.
 */
export interface WaitContext {
  sender: Sender;
  signal?: AbortSignal;
}

export class BrokerService {
  constructor(private readonly env: Env) {}

  registry(): DurableObjectStub<TopicRegistry> {
    return this.env.REGISTRY.get(this.env.REGISTRY.idFromName("registry"));
  }

  shard(topic: string, queue: number): DurableObjectStub<QueueShard> {
    return this.env.SHARDS.get(this.env.SHARDS.idFromName(`${topic}#${queue}`));
  }

  private queues(config: TopicConfig): number[] {
    return Array.from({ length: config.queues }, (_, i) => i);
  }

  // ---- config and routes ---------------------------------------------------

  /** A topic's config from the cache, or the registry; TOPIC_NOT_FOUND when unknown. */
  async topic(name: string): Promise<TopicConfig> {
    const hit = topicCache.get(name, Date.now());
    if (hit) return hit;
    const config = await rpc(() => this.registry().getTopic(name));
    if (!config) {
      topicCache.delete(name);
      throw new EdgemqError("TOPIC_NOT_FOUND", `topic ${name} not found`);
    }
    topicCache.set(name, config, Date.now());
    return config;
  }

  /**
   * Runs a shard call and unwraps its outcome (shards answer expected
   * refusals as outcomes, see broker/outcome.ts); a shard that says its topic
   * is gone drops the cached route.
   */
  private async onShard<T>(topic: string, fn: () => Promise<Outcome<T>> | Outcome<T>): Promise<T> {
    try {
      return unwrap(await rpc(fn));
    } catch (e) {
      if (e instanceof EdgemqError && e.code === "TOPIC_NOT_FOUND") topicCache.delete(topic);
      throw e;
    }
  }

  async putTopic(
    name: string,
    input: Parameters<TopicRegistry["putTopic"]>[1],
  ): Promise<TopicConfig> {
    const { config, previous } = await rpc(() => this.registry().putTopic(name, input));
    await Promise.all(
      this.queues(config).map((q) =>
        this.onShard(name, () => this.shard(name, q).configure(config, q)),
      ),
    );
    // New queues deliver to the topic's push subscriptions too.
    if (previous && config.queues > previous.queues) await new PushService(this).installAllOf(name);
    topicCache.set(name, config, Date.now());
    return config;
  }

  async deleteTopic(name: string): Promise<void> {
    const config = await rpc(() => this.registry().deleteTopic(name));
    if (!config) throw new EdgemqError("TOPIC_NOT_FOUND", `topic ${name} not found`);
    topicCache.delete(name);
    subscribed.deleteWhere((key) => key.endsWith(`\u0000${name}`));
    await Promise.all(
      this.queues(config).map((q) => this.onShard(name, () => this.shard(name, q).destroy())),
    );
  }

  async group(name: string): Promise<GroupConfig> {
    const hit = groupCache.get(name, Date.now());
    if (hit) return hit;
    const config = (await rpc(() => this.registry().getGroup(name, true)))!;
    groupCache.set(name, config, Date.now());
    return config;
  }

  async putGroup(
    name: string,
    input: Parameters<TopicRegistry["putGroup"]>[1],
  ): Promise<GroupConfig> {
    const config = await rpc(() => this.registry().putGroup(name, input));
    groupCache.set(name, config, Date.now());
    return config;
  }

  /** Deletes a group and forgets what this isolate cached about it. */
  async deleteGroup(name: string): Promise<boolean> {
    const existed = await rpc(() => this.registry().deleteGroup(name));
    groupCache.delete(name);
    subscribed.deleteWhere((key) => key.startsWith(`${name}\u0000`));
    return existed;
  }

  /**
   * Records that a group consumes a topic (creating the group if new): once
   * per isolate per cache lifetime, so a subscription lost to a group's
   * deletion elsewhere is recorded again.
   */
  async subscribe(group: string, topic: string): Promise<GroupConfig> {
    const key = subscription(group, topic);
    if (subscribed.get(key, Date.now()) === undefined) {
      const config = await rpc(() => this.registry().subscribe(group, topic));
      groupCache.set(group, config, Date.now());
      subscribed.set(key, true, Date.now());
    }
    return this.group(group);
  }

  private checkQueue(config: TopicConfig, queue: number): void {
    if (!Number.isSafeInteger(queue) || queue < 0 || queue >= config.queues) {
      throw badRequest(`queue must be an integer from 0 to ${config.queues - 1}`);
    }
  }

  // ---- send ----------------------------------------------------------------

  /** The queue of a message: pinned, else by sharding key, else by msgId. */
  private route(config: TopicConfig, m: NormalizedMessage, pinned: number | undefined): number {
    if (pinned !== undefined) return pinned;
    return queueFor(m.shardingKey ?? m.msgId, config.queues);
  }

  /**
   * Sends a batch from `sender` (auth.ts `senderSpace`: msgIds dedup within
   * it). Every message is checked before any shard is touched, so one bad
   * message stores nothing; results come in request order.
   */
  async send(
    topic: string,
    { messages }: SendRequest,
    pinned: number | undefined,
    sender: Sender,
  ): Promise<{ results: SendResult[] }> {
    const config = await this.topic(topic);
    if (pinned !== undefined) this.checkQueue(config, pinned);
    messages.forEach((m, i) => checkMessageSize(m, config.maxMessageBytes, i));
    const byQueue = new Map<number, { index: number[]; messages: NormalizedMessage[] }>();
    messages.forEach((m, i) => {
      const q = this.route(config, m, pinned);
      let part = byQueue.get(q);
      if (!part) byQueue.set(q, (part = { index: [], messages: [] }));
      part.index.push(i);
      part.messages.push(m);
    });
    const parts = [...byQueue];
    // A batch spanning queues is all or nothing: its parts are admitted
    // first, by reservation unless no queue can refuse (see spanning.ts).
    let admitted: SpanningPart | undefined;
    if (parts.length > 1) {
      const now = Date.now();
      const known = parts.every(([q]) => roomCache.get(`${topic}#${q}`, now));
      if (hasRejectBound(config) || !known) {
        const reservation = crypto.randomUUID();
        await this.reserveAll(topic, reservation, parts, sender);
        admitted = { reservation };
      } else {
        admitted = {};
      }
    }
    const results = new Array<SendResult>(messages.length);
    await Promise.all(
      parts.map(async ([q, part]) => {
        const stored = await this.onShard(topic, () =>
          this.shard(topic, q).send(part.messages, sender, admitted),
        ).catch((e: unknown) => {
          // A refusal (an admitted part past even its slack): ask this shard again next time.
          roomCache.delete(`${topic}#${q}`);
          throw e;
        });
        stored.forEach((r, j) => (results[part.index[j]!] = r));
      }),
    );
    return { results };
  }

  /**
   * Reserves room for every part of a batch spanning queues, under one id;
   * when any queue refuses, releases the others and throws that refusal (the
   * first in the batch's order). Remembers which shards have plenty of room.
   */
  private async reserveAll(
    topic: string,
    id: string,
    parts: [number, { messages: NormalizedMessage[] }][],
    sender: Sender,
  ): Promise<void> {
    const settled = await Promise.all(
      parts.map(([q, part]) =>
        this.onShard(topic, () =>
          this.shard(topic, q).reserve(id, reservePart(part.messages), sender),
        ).then(
          (room) => ({ q, room, error: null }),
          (error: unknown) => ({ q, room: null, error }),
        ),
      ),
    );
    const refused = settled.find((s) => s.error !== null);
    if (refused) {
      await Promise.all(
        settled
          .filter((s) => s.error === null)
          .map((s) => rpc(() => this.shard(topic, s.q).release(id)).catch(() => undefined)),
      );
      roomCache.delete(`${topic}#${refused.q}`);
      throw refused.error;
    }
    const now = Date.now();
    for (const s of settled) {
      if (s.room?.plenty) roomCache.set(`${topic}#${s.q}`, true, now);
      else roomCache.delete(`${topic}#${s.q}`);
    }
  }

  /**
   * Recalls `sender`'s scheduled message not yet due (it may sit on any
   * queue); the admin space (null) recalls any sender's.
   */
  async recall(topic: string, msgId: string, sender: Sender): Promise<void> {
    const config = await this.topic(topic);
    const outcomes = await Promise.all(
      this.queues(config).map((q) =>
        this.onShard(topic, () => this.shard(topic, q).recall(msgId, sender)),
      ),
    );
    if (outcomes.includes("recalled")) return;
    if (outcomes.includes("delivered")) {
      throw new EdgemqError("NOT_RECALLABLE", `message ${msgId} was already delivered`);
    }
    throw new EdgemqError("MESSAGE_NOT_FOUND", `no message ${msgId} in topic ${topic}`);
  }

  // ---- pull and offsets ----------------------------------------------------

  async pull(
    topic: string,
    queue: number,
    req: PullRequest,
    wait: WaitContext,
  ): Promise<PullResult> {
    const config = await this.topic(topic);
    this.checkQueue(config, queue);
    const filter = filterText(req.filter);
    const read: ShardPullOptions = {
      ...(req.offset !== undefined && { offset: req.offset }),
      ...(req.group !== undefined && { group: req.group }),
      ...(filter !== undefined && { filter }),
      max: req.max,
    };
    if (read.group !== undefined) await this.subscribe(read.group, topic);
    const stub = this.shard(topic, queue);
    const first = await this.onShard(topic, () => stub.pull(read));
    if (req.waitMs <= 0 || first.messages.length > 0 || first.skipped > 0) return first;
    return this.waitPull(topic, stub, read, first, Date.now() + req.waitMs, wait);
  }

  /**
   * A pull's long-poll: watches the shard (see shard-watch.ts) and pulls again
   * from where the last scan stopped whenever its log grew past that point.
   */
  private async waitPull(
    topic: string,
    stub: DurableObjectStub<QueueShard>,
    opts: ShardPullOptions,
    first: PullResult,
    deadline: number,
    wait: WaitContext,
  ): Promise<PullResult> {
    const watch = await ShardWatch.open(
      [stub],
      { kind: "pull", offset: first.nextOffset, filter: opts.filter ?? null },
      wait.sender,
      wait.signal,
    );
    try {
      let last = first;
      for (;;) {
        // Anything appended since the first look is noticed as the watch opens.
        const notice = await watch.next(
          deadline - Date.now(),
          (n) => !(n.maxOffset <= last.nextOffset),
        );
        if (notice === null) return last;
        const r = await this.onShard(topic, () => stub.pull({ ...opts, offset: last.nextOffset }));
        if (r.messages.length > 0 || r.skipped > 0) return r;
        last = r;
      }
    } finally {
      watch.close();
    }
  }

  async commitOffset(group: string, topic: string, queue: number, offset: number): Promise<void> {
    const config = await this.topic(topic);
    this.checkQueue(config, queue);
    await this.subscribe(group, topic);
    await this.onShard(topic, () => this.shard(topic, queue).commitOffset(group, offset));
  }

  async groupTopicStats(group: string, topic: string): Promise<GroupQueueStats[]> {
    const config = await this.topic(topic);
    return Promise.all(
      this.queues(config).map((q) =>
        this.onShard(topic, () => this.shard(topic, q).groupStats(group)),
      ),
    );
  }

  async resetOffsets(
    group: string,
    topic: string,
    to: ResetTarget,
  ): Promise<{ queue: number; offset: number }[]> {
    const config = await this.topic(topic);
    await this.subscribe(group, topic);
    return Promise.all(
      this.queues(config).map(async (q) => ({
        queue: q,
        offset: await this.onShard(topic, () => this.shard(topic, q).resetOffset(group, to)),
      })),
    );
  }

  // ---- receive and ack -----------------------------------------------------

  /**
   * Receives across every queue of the topic. Claims only what it returns;
   * when nothing is ready it waits on all shards without claiming and claims
   * from the first that wakes, so a client that goes away while waiting loses
   * nothing.
   */
  async receive(
    group: string,
    topic: string,
    opts: ReceiveRequest,
    wait: WaitContext,
  ): Promise<{ messages: Message[] }> {
    const config = await this.topic(topic);
    const groupConfig = await this.subscribe(group, topic);
    const deadline = Date.now() + opts.waitMs;
    const messages = await this.claim(topic, config, groupConfig, opts);
    if (messages.length || opts.waitMs <= 0) return { messages };
    // Wait by watching every shard of the topic (see shard-watch.ts): a shard
    // that got something since the first look says so as the watch opens.
    // Claim first from the shard that spoke.
    const watch = await ShardWatch.open(
      this.queues(config).map((q) => this.shard(topic, q)),
      { kind: "receive", group, filter: filterText(opts.filter) ?? null },
      wait.sender,
      wait.signal,
    );
    try {
      for (;;) {
        const notice = await watch.next(deadline - Date.now());
        if (notice === null) return { messages: [] };
        const got = await this.claim(topic, config, groupConfig, opts, notice.index);
        if (got.length) return { messages: got };
      }
    } finally {
      watch.close();
    }
  }

  private async claim(
    topic: string,
    config: TopicConfig,
    group: GroupConfig,
    opts: ReceiveRequest,
    first?: number,
  ): Promise<Message[]> {
    const out: Message[] = [];
    const filter = filterText(opts.filter);
    // Start at a rotating queue so concurrent consumers spread over the shards
    // (or at the one a watcher heard from). A shard with nothing for the group
    // answers at once (it waits for no commit).
    const start = first ?? rotation++ % config.queues;
    // One answer's byte budget over all the shards asked: each is asked for
    // what is left, and only the first that hands anything out may exceed it
    // (with one message), so the shards claim only what this answer returns.
    let bytes = 0;
    for (let i = 0; i < config.queues && out.length < opts.max; i++) {
      const left = Limits.maxAnswerBytes - bytes;
      if (left <= 0) break;
      const q = (start + i) % config.queues;
      const claimed = await this.onShard(topic, () =>
        this.shard(topic, q).receive(group, opts.max - out.length, opts.invisibleMs, filter, {
          max: left,
          atLeastOne: out.length === 0,
        }),
      );
      for (const c of claimed) {
        bytes += c.bytes;
        out.push({
          ...c.message,
          receipt: encodeReceipt({
            topic,
            group: group.group,
            queue: q,
            offset: c.message.offset,
            handle: c.handle,
          }),
        });
      }
    }
    return out;
  }

  /** Checks that receipts address queues of the topic and group named by the request; all or nothing. */
  private checkReceipts(group: string, topic: string, config: TopicConfig, receipts: Receipt[]) {
    receipts.forEach((p, i) => {
      if (p.topic !== topic || p.group !== group) {
        throw badRequest(`receipts[${i}] belongs to another topic or group`);
      }
      this.checkQueue(config, p.queue);
    });
  }

  async settle(
    group: string,
    topic: string,
    parsed: Receipt[],
    nack: false | { delayMs?: number },
  ): Promise<{ results: AckResult[] }> {
    const config = await this.topic(topic);
    this.checkReceipts(group, topic, config, parsed);
    const groupConfig = nack ? await this.group(group) : null;
    const byQueue = new Map<number, number[]>();
    parsed.forEach((p, i) => byQueue.set(p.queue, [...(byQueue.get(p.queue) ?? []), i]));
    const results = new Array<AckResult>(parsed.length);
    await Promise.all(
      [...byQueue].map(async ([q, idx]) => {
        const refs = idx.map((i) => ({ offset: parsed[i]!.offset, handle: parsed[i]!.handle }));
        const stub = this.shard(topic, q);
        const outcomes = await this.onShard(topic, () =>
          nack ? stub.nack(groupConfig!, refs, nack.delayMs) : stub.ack(group, refs),
        );
        outcomes.forEach((o, j) => {
          const receipt = parsed[idx[j]!]!.receipt;
          results[idx[j]!] = o.ok
            ? { receipt, ok: true }
            : { receipt, error: { code: o.code, message: o.message } };
        });
      }),
    );
    return { results };
  }

  async changeInvisibility(
    group: string,
    topic: string,
    p: Receipt,
    invisibleMs: number,
  ): Promise<{ receipt: string }> {
    const config = await this.topic(topic);
    this.checkReceipts(group, topic, config, [p]);
    const handle = await this.onShard(topic, () =>
      this.shard(topic, p.queue).changeInvisibility(
        group,
        { offset: p.offset, handle: p.handle },
        invisibleMs,
      ),
    );
    return { receipt: encodeReceipt({ ...p, handle }) };
  }

  // ---- groups --------------------------------------------------------------

  async groupTopics(group: string): Promise<string[]> {
    return rpc(() => this.registry().subscriptions(group));
  }

  /** Every shard of every topic the group consumes (topics deleted since are skipped), topic by topic. */
  private async groupShards(
    group: string,
  ): Promise<{ topic: string; stub: DurableObjectStub<QueueShard> }[]> {
    const topics = await this.groupTopics(group);
    const perTopic = await Promise.all(
      topics.map(async (t) => {
        const config = await this.topic(t).catch(() => null);
        if (!config) return [];
        return this.queues(config).map((q) => ({ topic: t, stub: this.shard(t, q) }));
      }),
    );
    return perTopic.flat();
  }

  /**
   * The group's dead letters over every shard of its topics: at most `limit`
   * and one answer's byte budget, each shard asked for its share of it (see
   * fan-out.ts).
   */
  async deadLetters(group: string, limit: number): Promise<Message[]> {
    const shards = await this.groupShards(group);
    const ask = (i: number, bytes: AnswerBytes) =>
      this.onShard(shards[i]!.topic, () => shards[i]!.stub.deadLetters(group, limit, bytes));
    const share = shareOf(Limits.maxAnswerBytes, shards.length);
    const pages = await Promise.all(shards.map((_, i) => ask(i, share)));
    let merged = mergeInTurn(pages, limit, Limits.maxAnswerBytes);
    if (merged.refill !== null) {
      pages[merged.refill] = await ask(merged.refill, WHOLE_ANSWER);
      merged = mergeInTurn(pages, limit, Limits.maxAnswerBytes);
    }
    return merged.messages;
  }

  /**
   * Takes dead letters back to the group: the msgIds given, or all. All of
   * them go in bounded steps per shard: `resent` names those taken back by
   * this call, and `continuing` says shards go on with the rest through
   * their alarms.
   */
  async resendDeadLetters(
    group: string,
    msgIds: string[] | null,
  ): Promise<{ resent: string[]; continuing: boolean }> {
    const shards = await this.groupShards(group);
    const steps = await Promise.all(
      shards.map((s) => this.onShard(s.topic, () => s.stub.resendDeadLetters(group, msgIds))),
    );
    return {
      resent: steps.flatMap((r) => r.resent),
      continuing: steps.some((r) => r.continuing),
    };
  }

  // ---- query ---------------------------------------------------------------

  /** A message by msgId in `sender`'s space (the admin space, null, sees every sender's). */
  async findById(topic: string, msgId: string, sender: Sender) {
    const config = await this.topic(topic);
    const found = await Promise.all(
      this.queues(config).map((q) =>
        this.onShard(topic, () => this.shard(topic, q).findById(msgId, sender)),
      ),
    );
    const hit = found.find((m) => m !== null);
    if (!hit) throw new EdgemqError("MESSAGE_NOT_FOUND", `no message ${msgId} in topic ${topic}`);
    return hit;
  }

  /**
   * Messages by key or store time over every queue, oldest first: at most
   * `limit` and one answer's byte budget, each shard asked for its share of
   * it (see fan-out.ts).
   */
  async find(
    topic: string,
    by: { key: string } | { from: number; to: number },
    limit: number,
  ): Promise<Message[]> {
    const config = await this.topic(topic);
    const ask = (q: number, bytes: AnswerBytes) =>
      this.onShard(topic, () =>
        "key" in by
          ? this.shard(topic, q).findByKey(by.key, limit, bytes)
          : this.shard(topic, q).findByTime(by.from, by.to, limit, bytes),
      );
    const share = shareOf(Limits.maxAnswerBytes, config.queues);
    const pages = await Promise.all(this.queues(config).map((q) => ask(q, share)));
    let merged = mergeOrdered(pages, limit, Limits.maxAnswerBytes);
    if (merged.refill !== null) {
      pages[merged.refill] = await ask(merged.refill, WHOLE_ANSWER);
      merged = mergeOrdered(pages, limit, Limits.maxAnswerBytes);
    }
    return merged.messages;
  }

  async queueStats(topic: string) {
    const config = await this.topic(topic);
    return Promise.all(
      this.queues(config).map((q) => this.onShard(topic, () => this.shard(topic, q).stats())),
    );
  }

  /** A push subscription's counters on each queue of its topic (queues where it is not installed are left out). */
  async pushStatsOf(topic: string, name: string) {
    const config = await this.topic(topic);
    const list = await Promise.all(
      this.queues(config).map((q) =>
        this.onShard(topic, () => this.shard(topic, q).pushStats(name)),
      ),
    );
    return list.filter((s) => s !== null);
  }

  async purge(topic: string) {
    const config = await this.topic(topic);
    return Promise.all(
      this.queues(config).map(async (q) => ({
        queue: q,
        ...(await this.onShard(topic, () => this.shard(topic, q).purge())),
      })),
    );
  }

  // ---- transactions --------------------------------------------------------

  /** Opens a transaction of `sender`'s: only that sender (or the admin space) may end it. */
  async prepare(
    topic: string,
    { message: m, producerGroup }: PrepareRequest,
    sender: Sender,
  ): Promise<{ txId: string; msgId: string }> {
    const config = await this.topic(topic);
    checkMessageSize(m, config.maxMessageBytes);
    const pg: ProducerGroupConfig = (await rpc(() =>
      this.registry().getProducerGroup(producerGroup),
    )) ?? {
      producerGroup,
      checkUrl: null,
      checkAfterMs: 6000,
      checkIntervalMs: 60_000,
      maxChecks: 15,
    };
    const queue = this.route(config, m, undefined);
    const { id, secret } = await this.onShard(topic, () =>
      this.shard(topic, queue).prepare(
        m,
        producerGroup,
        {
          checkUrl: pg.checkUrl,
          checkAfterMs: pg.checkAfterMs,
          checkIntervalMs: pg.checkIntervalMs,
          maxChecks: pg.maxChecks,
        },
        sender,
      ),
    );
    return { txId: encodeTxId({ topic, queue, id, secret }), msgId: m.msgId };
  }

  /** The shard a txId names; TRANSACTION_NOT_FOUND when its topic or queue does not exist. */
  private async txShard(txId: string) {
    const p = parseTxId(txId);
    const config = await this.topic(p.topic).catch((e: unknown) => {
      throw e instanceof EdgemqError && e.code === "TOPIC_NOT_FOUND"
        ? new EdgemqError("TRANSACTION_NOT_FOUND", "no such transaction")
        : e;
    });
    if (p.queue >= config.queues)
      throw new EdgemqError("TRANSACTION_NOT_FOUND", "no such transaction");
    return { ...p, stub: this.shard(p.topic, p.queue) };
  }

  /**
   * Ends a transaction for `sender`: only its own, or any for the admin
   * space (null); anyone else's, or a txId whose secret is wrong, is
   * TRANSACTION_NOT_FOUND, exactly like one that never existed. With
   * `authorize` (a caller limited to some producer groups), the
   * transaction's producer group is read first and checked.
   */
  async endTransaction(
    txId: string,
    commit: boolean,
    sender: Sender,
    authorize?: (producerGroup: string) => void,
  ): Promise<{ status: "committed" | "rolledBack" }> {
    const p = await this.txShard(txId);
    const caller = { secret: p.secret, sender };
    if (authorize) authorize((await this.half(p, caller)).producerGroup);
    const r = await this.onShard(p.topic, () => p.stub.endTransaction(p.id, commit, caller));
    return { status: r.status };
  }

  /** A transaction as `caller` may see it; TRANSACTION_NOT_FOUND otherwise. */
  private async half(p: Awaited<ReturnType<BrokerService["txShard"]>>, caller: TxCaller) {
    const found = await this.onShard(p.topic, () => p.stub.transaction(p.id, caller));
    if (!found) throw new EdgemqError("TRANSACTION_NOT_FOUND", "no such transaction");
    return found;
  }

  /** One transaction's state (as {@link endTransaction} allows): open, or how and when it ended (ended ones are kept 24 h). */
  async transaction(
    txId: string,
    sender: Sender,
    authorize: (producerGroup: string) => void = () => {},
  ) {
    const p = await this.txShard(txId);
    const { id: _id, secret: _secret, ...t } = await this.half(p, { secret: p.secret, sender });
    authorize(t.producerGroup);
    return { txId, topic: p.topic, queue: p.queue, ...t };
  }

  async openTransactions(topic: string, limit: number) {
    const config = await this.topic(topic);
    const now = Date.now();
    const lists = await Promise.all(
      this.queues(config).map(async (q) =>
        (await this.onShard(topic, () => this.shard(topic, q).openTransactions(limit))).map(
          (t) => ({
            txId: encodeTxId({ topic, queue: q, id: t.id, secret: t.secret }),
            msgId: t.msgId,
            producerGroup: t.producerGroup,
            queue: q,
            createdAt: t.createdAt,
            ageMs: now - t.createdAt,
            checks: t.checks,
            nextCheckAt: t.nextCheckAt,
          }),
        ),
      ),
    );
    return lists
      .flat()
      .sort((a, b) => a.createdAt - b.createdAt)
      .slice(0, limit);
  }
}
