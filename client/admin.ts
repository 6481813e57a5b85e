/**
 * Administration (RocketMQ's `mqadmin`): topics, consumer groups, lag,
 * offset resets, message queries, dead letters, tokens, producer groups,
 * recurring schedules and push subscriptions.
 * Needs a token with every permission (the `ADMIN_TOKEN`, or a binding).
 *
 * ```ts
 * const admin = new Admin({ endpoint, token: ADMIN_TOKEN });
 * await admin.createTopic("orders", { queues: 8 });
 * const token = await admin.createToken({ sub: "web", publish: ["orders"], ttlSeconds: 3600 });
 * ```
 */
import type {
  GroupConfig,
  GroupQueueStats,
  Message,
  ProducerGroupConfig,
  QueueStats,
  TopicConfig,
} from "../src/protocol/types.ts";
import type { ScheduleInfo, ScheduleInput, ScheduleRunResult } from "../src/protocol/schedule.ts";
import type { PushConfig, PushInfo, PushInput, PushPutResult } from "../src/protocol/push.ts";
import type {
  GroupConfigInput,
  ProducerGroupInput,
  TopicConfigInput,
} from "../src/protocol/requests/config.ts";
import { query, seg } from "./message.ts";
import { requestWithRetry, type RetryOptions } from "./retry.ts";
import { type Connection, createTransport, type Transport } from "./transport.ts";

/** Options of {@link Admin}. */
export type AdminOptions = Connection & { retry?: RetryOptions };

/** A topic's config with its per-queue numbers. */
export interface TopicDetails extends TopicConfig {
  queueStats: QueueStats[];
}

/** A group's config with its progress on each topic it consumes. */
export interface GroupDetails extends GroupConfig {
  topics: Record<string, GroupQueueStats[]>;
}

/** A group's offsets on one topic. */
export interface QueueLag {
  queue: number;
  offset: number;
  maxOffset: number;
  lag: number;
}

/** Where a message stands for each group. */
export type MessageGroupState = "consumed" | "pending" | "inflight" | "retrying" | "dlq";

/** A message found by id, with its state per group. */
export interface QueriedMessage extends Message {
  groups: Record<string, MessageGroupState>;
}

/** Claims of a scoped token. Patterns may end with `*`. */
export interface TokenClaims {
  /** Who the token is for. */
  sub: string;
  /** Topics it may send to (and run transactions on). */
  publish?: string[];
  /** Topics it may pull and receive from. */
  subscribe?: string[];
  /** Groups it may receive, ack and commit offsets for. */
  groups?: string[];
  /** Producer groups it may open, commit and roll back transactions for. */
  producerGroups?: string[];
  /** Lifetime. */
  ttlSeconds?: number;
}

/** Administrative calls of the contract. */
export class Admin {
  readonly #transport: Transport;
  readonly #retry: RetryOptions;

  constructor(options: AdminOptions) {
    this.#transport = createTransport(options);
    this.#retry = { ...options.retry };
  }

  /** Whether the broker answers (`GET /v1/health`, no token needed). */
  async health(): Promise<boolean> {
    const answer = (await this.#call("GET", "/v1/health")) as { ok?: boolean };
    return answer?.ok === true;
  }

  // Topics

  /** Creates a topic, or updates it: queues may grow, never shrink. */
  createTopic(topic: string, config: TopicConfigInput = {}): Promise<TopicConfig> {
    return this.#call("PUT", `/v1/topics/${seg(topic)}`, config) as Promise<TopicConfig>;
  }

  /** Same call as {@link createTopic}: `PUT` creates or updates. */
  updateTopic(topic: string, config: TopicConfigInput): Promise<TopicConfig> {
    return this.createTopic(topic, config);
  }

  /** Every topic's config. */
  async listTopics(): Promise<TopicConfig[]> {
    return ((await this.#call("GET", "/v1/topics")) as { topics: TopicConfig[] }).topics;
  }

  /** A topic's config and queue numbers. */
  getTopic(topic: string): Promise<TopicDetails> {
    return this.#call("GET", `/v1/topics/${seg(topic)}`) as Promise<TopicDetails>;
  }

  /** Deletes a topic and its data. */
  async deleteTopic(topic: string): Promise<void> {
    await this.#call("DELETE", `/v1/topics/${seg(topic)}`);
  }

  /** Deletes every stored message; config and group offsets stay (moved to the new minimum). */
  async purgeTopic(topic: string): Promise<void> {
    await this.#call("POST", `/v1/topics/${seg(topic)}/purge`);
  }

  /** The topic's queue count (the NameServer call). */
  route(topic: string): Promise<{ topic: string; queues: number }> {
    return this.#call("GET", `/v1/topics/${seg(topic)}/route`) as Promise<{
      topic: string;
      queues: number;
    }>;
  }

  // Consumer groups

  /** Creates or updates a consumer group (retries, order mode). */
  createGroup(group: string, config: GroupConfigInput = {}): Promise<GroupConfig> {
    return this.#call("PUT", `/v1/groups/${seg(group)}`, config) as Promise<GroupConfig>;
  }

  /** Same call as {@link createGroup}. */
  updateGroup(group: string, config: GroupConfigInput): Promise<GroupConfig> {
    return this.createGroup(group, config);
  }

  /** A group's config and per-topic progress (offset, lag, in flight, retrying, DLQ). */
  getGroup(group: string): Promise<GroupDetails> {
    return this.#call("GET", `/v1/groups/${seg(group)}`) as Promise<GroupDetails>;
  }

  /** A group's offsets and lag on a topic, per queue. */
  async lag(group: string, topic: string): Promise<QueueLag[]> {
    const answer = (await this.#call(
      "GET",
      `/v1/groups/${seg(group)}/topics/${seg(topic)}/offsets`,
    )) as {
      offsets: QueueLag[];
    };
    return answer.offsets;
  }

  /** The sum of a group's lag on a topic. */
  async totalLag(group: string, topic: string): Promise<number> {
    return (await this.lag(group, topic)).reduce((sum, q) => sum + q.lag, 0);
  }

  /**
   * Resets a group's offsets on a topic: to the first message stored at or
   * after a time (Unix ms or Date), or to `earliest`/`latest`. Creates the
   * group if new. Resolves with the new offset of each queue.
   */
  async resetOffsets(
    group: string,
    topic: string,
    to: number | Date | "earliest" | "latest",
  ): Promise<{ queue: number; offset: number }[]> {
    const body =
      to === "earliest" || to === "latest"
        ? { to }
        : { timestamp: to instanceof Date ? to.getTime() : to };
    const answer = (await this.#call(
      "POST",
      `/v1/groups/${seg(group)}/topics/${seg(topic)}/offsets/reset`,
      body,
    )) as { offsets: { queue: number; offset: number }[] };
    return answer.offsets;
  }

  /** Commits a group's offset on one queue (the next offset to read). */
  async commitOffset(group: string, topic: string, queue: number, offset: number): Promise<void> {
    await this.#call(
      "PUT",
      `/v1/groups/${seg(group)}/topics/${seg(topic)}/queues/${queue}/offset`,
      { offset },
    );
  }

  // Messages

  /** A message by id, with its state for each group; rejects `MESSAGE_NOT_FOUND`. */
  queryMessage(topic: string, msgId: string): Promise<QueriedMessage> {
    return this.#call(
      "GET",
      `/v1/topics/${seg(topic)}/messages/${seg(msgId)}`,
    ) as Promise<QueriedMessage>;
  }

  /** Messages carrying a key. */
  async queryByKey(topic: string, key: string): Promise<Message[]> {
    const answer = (await this.#call(
      "GET",
      `/v1/topics/${seg(topic)}/messages${query({ key })}`,
    )) as {
      messages: Message[];
    };
    return answer.messages;
  }

  /** Messages stored in `[from, to)` (Unix ms or Dates), at most `limit` (default 100). */
  async queryByTime(
    topic: string,
    from: number | Date,
    to: number | Date,
    limit?: number,
  ): Promise<Message[]> {
    const ms = (t: number | Date) => (t instanceof Date ? t.getTime() : t);
    const answer = (await this.#call(
      "GET",
      `/v1/topics/${seg(topic)}/messages${query({ from: ms(from), to: ms(to), limit })}`,
    )) as { messages: Message[] };
    return answer.messages;
  }

  /** Recalls a scheduled message not yet due (`NOT_RECALLABLE` once delivered). */
  async recall(topic: string, msgId: string): Promise<void> {
    await this.#call("DELETE", `/v1/topics/${seg(topic)}/messages/${seg(msgId)}`);
  }

  // Dead letters

  /** The messages in a group's dead-letter queue. */
  async listDlq(group: string): Promise<Message[]> {
    const answer = (await this.#call("GET", `/v1/groups/${seg(group)}/dlq/messages`)) as {
      messages: Message[];
    };
    return answer.messages;
  }

  /**
   * Takes messages out of a group's DLQ and delivers them to that group
   * again (same msgId, reconsumeTimes back to 0). No ids: all of them.
   */
  async resendDlq(group: string, msgIds?: string[]): Promise<unknown> {
    return this.#call("POST", `/v1/groups/${seg(group)}/dlq/resend`, msgIds ? { msgIds } : {});
  }

  // Tokens and producer groups

  /** Mints a scoped token (an HS256 JWT signed with the broker's `TOKEN_SECRET`). */
  async createToken(claims: TokenClaims): Promise<string> {
    return ((await this.#call("POST", "/v1/tokens", claims)) as { token: string }).token;
  }

  /**
   * Creates or updates a producer group: the check URL and schedule of
   * transaction check-backs. The answer carries `signingSecret` only when a
   * secret was just made (the group is new, or `rotateSecret: true`): keep
   * it for the check handler ({@link createCheckHandler}); it is not shown again.
   */
  putProducerGroup(
    producerGroup: string,
    config: ProducerGroupInput,
  ): Promise<ProducerGroupConfig & { signingSecret?: string }> {
    return this.#call("PUT", `/v1/producer-groups/${seg(producerGroup)}`, config) as Promise<
      ProducerGroupConfig & { signingSecret?: string }
    >;
  }

  // Recurring schedules

  /**
   * Creates or updates a recurring schedule: `message` is sent to `topic` at
   * each fire time of `cron` (5 fields minute first, or 6 seconds first) in
   * `timezone` (IANA, default UTC). On update, fields left out keep their
   * value. Each fire's msgId is `{name}:{fireTimeMs}`.
   *
   * ```ts
   * await admin.putSchedule("nightly", {
   *   topic: "reports", cron: "0 2 * * *", timezone: "Europe/Paris",
   *   message: { body: "run", tag: "nightly" },
   * });
   * ```
   */
  putSchedule(name: string, schedule: ScheduleInput): Promise<ScheduleInfo> {
    return this.#call("PUT", `/v1/schedules/${seg(name)}`, schedule) as Promise<ScheduleInfo>;
  }

  /** A schedule's config with its next and last fire, counts and last error. */
  getSchedule(name: string): Promise<ScheduleInfo> {
    return this.#call("GET", `/v1/schedules/${seg(name)}`) as Promise<ScheduleInfo>;
  }

  /** Every schedule, by name (the pages of `GET /v1/schedules` read one after another). */
  async listSchedules(): Promise<ScheduleInfo[]> {
    const all: ScheduleInfo[] = [];
    let after: string | null = null;
    do {
      const page = (await this.#call(
        "GET",
        `/v1/schedules${query({ limit: 1000, after: after ?? undefined })}`,
      )) as { schedules: ScheduleInfo[]; next?: string | null };
      all.push(...page.schedules);
      after = page.next ?? null;
    } while (after !== null);
    return all;
  }

  /** Deletes a schedule: once this resolves it sends nothing more. */
  async deleteSchedule(name: string): Promise<void> {
    await this.#call("DELETE", `/v1/schedules/${seg(name)}`);
  }

  /** Sends the schedule's message now (msgId `{name}:run:{nowMs}`), paused or not. */
  runSchedule(name: string): Promise<ScheduleRunResult> {
    return this.#call("POST", `/v1/schedules/${seg(name)}/run`) as Promise<ScheduleRunResult>;
  }

  /** Stops a schedule's fires until {@link resumeSchedule}. */
  pauseSchedule(name: string): Promise<ScheduleInfo> {
    return this.putSchedule(name, { paused: true });
  }

  /** Resumes a paused schedule from now: fire times passed while paused are not sent. */
  resumeSchedule(name: string): Promise<ScheduleInfo> {
    return this.putSchedule(name, { paused: false });
  }

  // ---- push subscriptions ----------------------------------------------------

  /**
   * Creates or updates a push subscription: the broker POSTs each message of
   * `topic` to `url`, signed; `name` is also its consumer group. On create
   * (and with `rotateSecret: true`) the answer carries `signingSecret`, shown
   * only then: give it to the endpoint's {@link createPushHandler}.
   *
   * ```ts
   * const { signingSecret } = await admin.putPush("billing-hook", {
   *   topic: "orders", url: "https://billing.example.com/edgemq", maxConcurrency: 8,
   * });
   * ```
   */
  putPush(name: string, input: PushInput): Promise<PushPutResult> {
    return this.#call("PUT", `/v1/push/${seg(name)}`, input) as Promise<PushPutResult>;
  }

  /** A push subscription's config with its stats (delivered, failed, in flight, lag, DLQ, last error). */
  getPush(name: string): Promise<PushInfo> {
    return this.#call("GET", `/v1/push/${seg(name)}`) as Promise<PushInfo>;
  }

  /** Every push subscription's config. */
  async listPush(): Promise<PushConfig[]> {
    const answer = (await this.#call("GET", "/v1/push")) as { push: PushConfig[] };
    return answer.push;
  }

  /** Stops a push subscription's deliveries; its group, offsets and dead letters stay. */
  async deletePush(name: string): Promise<void> {
    await this.#call("DELETE", `/v1/push/${seg(name)}`);
  }

  /** Stops a push subscription's deliveries until {@link resumePush} (nothing is skipped). */
  pausePush(name: string): Promise<PushPutResult> {
    return this.putPush(name, { paused: true });
  }

  /** Resumes a paused push subscription, from where it stopped. */
  resumePush(name: string): Promise<PushPutResult> {
    return this.putPush(name, { paused: false });
  }

  /** Makes a new signing secret for a push subscription (the old one signs 24 h more) and answers it. */
  async rotatePushSecret(name: string): Promise<string> {
    const answer = await this.putPush(name, { rotateSecret: true });
    return answer.signingSecret!;
  }

  #call(method: string, path: string, body?: unknown): Promise<unknown> {
    return requestWithRetry(this.#transport, method, path, body, this.#retry);
  }
}
