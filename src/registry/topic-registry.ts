import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";
import { type Outcome, answerNow } from "../broker/outcome.ts";
import { EdgemqError, badRequest } from "../protocol/errors.ts";
import { Limits } from "../protocol/limits.ts";
import { type PushConfig, type PushInput, mergePush } from "../protocol/push.ts";
import type { GroupConfig, ProducerGroupConfig, TopicConfig } from "../protocol/types.ts";
import {
  type GroupConfigInput,
  type ProducerGroupInput,
  type TopicConfigInput,
  checkBacklogBounds,
  defaultGroupConfig,
} from "../protocol/validate.ts";
import { assignQueues, liveMembers } from "./assignment.ts";
import { migrate } from "../storage/migrations.ts";
import { REGISTRY_MIGRATIONS } from "./schema.ts";
import { SigningSecrets, producerGroupOwner, pushSubscriptionOwner } from "./signing-secrets.ts";

export interface Membership {
  members: string[];
  assignment: Record<string, number[]>;
}

/**
 * The NameServer's memory: topic, consumer-group and producer-group config,
 * group subscriptions and heartbeat membership. One instance (named
 * "registry"); the gateway caches what it reads, so the data path rarely
 * comes here.
 */
export class TopicRegistry extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly secrets: SigningSecrets;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.secrets = new SigningSecrets(this.sql);
    ctx.storage.transactionSync(() => migrate(this.sql, REGISTRY_MIGRATIONS, Date.now()));
  }

  private read<T>(table: string, name: string): T | null {
    const row = this.sql
      .exec<{ config: string }>(`SELECT config FROM ${table} WHERE name = ?`, name)
      .toArray()[0];
    return row ? (JSON.parse(row.config) as T) : null;
  }

  private write(table: string, name: string, config: unknown): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO ${table} (name, config) VALUES (?, ?)`,
      name,
      JSON.stringify(config),
    );
  }

  // ---- topics --------------------------------------------------------------

  /** Creates or updates a topic. Queues may grow, never shrink. */
  putTopic(
    name: string,
    input: TopicConfigInput,
  ): { config: TopicConfig; previous: TopicConfig | null } {
    const now = Date.now();
    const previous = this.read<TopicConfig>("topic", name);
    const config: TopicConfig = {
      topic: name,
      queues: input.queues ?? previous?.queues ?? Limits.defaultQueues,
      retentionMs: input.retentionMs ?? previous?.retentionMs ?? Limits.defaultRetentionMs,
      maxMessageBytes:
        input.maxMessageBytes ?? previous?.maxMessageBytes ?? Limits.defaultMaxMessageBytes,
      maxBacklogMessages:
        input.maxBacklogMessages !== undefined
          ? input.maxBacklogMessages
          : (previous?.maxBacklogMessages ?? null),
      maxBacklogBytes:
        input.maxBacklogBytes !== undefined
          ? input.maxBacklogBytes
          : (previous?.maxBacklogBytes ?? null),
      overflowPolicy: input.overflowPolicy ?? previous?.overflowPolicy ?? "reject",
      createdAt: previous?.createdAt ?? now,
      // Strictly increasing: shards take only a newer config (two updates in one millisecond are two).
      updatedAt: Math.max(now, (previous?.updatedAt ?? 0) + 1),
    };
    if (previous && config.queues < previous.queues) {
      throw new EdgemqError(
        "BAD_REQUEST",
        `queues may grow but never shrink (topic has ${previous.queues})`,
      );
    }
    checkBacklogBounds(config);
    this.write("topic", name, config);
    return { config, previous };
  }

  getTopic(name: string): TopicConfig | null {
    return this.read<TopicConfig>("topic", name);
  }

  listTopics(): TopicConfig[] {
    return this.sql
      .exec<{ config: string }>("SELECT config FROM topic ORDER BY name")
      .toArray()
      .map((r) => JSON.parse(r.config) as TopicConfig);
  }

  deleteTopic(name: string): TopicConfig | null {
    const config = this.read<TopicConfig>("topic", name);
    this.sql.exec("DELETE FROM topic WHERE name = ?", name);
    this.sql.exec("DELETE FROM subscription WHERE topic = ?", name);
    // Its push subscriptions have nothing left to deliver (their groups stay, as other groups do).
    for (const p of this.pushOfTopic(name)) this.deletePush(p.name);
    return config;
  }

  // ---- consumer groups -----------------------------------------------------

  putGroup(name: string, input: GroupConfigInput): GroupConfig {
    const now = Date.now();
    const stored = this.read<GroupConfig>("grp", name);
    const previous = stored ?? defaultGroupConfig(name, now);
    const config: GroupConfig = {
      ...previous,
      ...input,
      group: name,
      // Strictly increasing: shards keep only a newer snapshot (see StoreState.rememberGroup).
      updatedAt: stored ? Math.max(now, stored.updatedAt + 1) : now,
    };
    this.write("grp", name, config);
    return config;
  }

  /** A group's config; created with defaults when `create` and it is new. */
  getGroup(name: string, create = false): GroupConfig | null {
    const config = this.read<GroupConfig>("grp", name);
    if (config || !create) return config;
    const fresh = defaultGroupConfig(name, Date.now());
    this.write("grp", name, fresh);
    return fresh;
  }

  listGroups(): GroupConfig[] {
    return this.sql
      .exec<{ config: string }>("SELECT config FROM grp ORDER BY name")
      .toArray()
      .map((r) => JSON.parse(r.config) as GroupConfig);
  }

  deleteGroup(name: string): boolean {
    const existed = this.read("grp", name) !== null;
    this.sql.exec("DELETE FROM grp WHERE name = ?", name);
    this.sql.exec("DELETE FROM subscription WHERE grp = ?", name);
    this.sql.exec("DELETE FROM member WHERE grp = ?", name);
    return existed;
  }

  /** Records that `group` consumes `topic` (and creates the group with defaults if new). */
  subscribe(group: string, topic: string): GroupConfig {
    const config = this.getGroup(group, true)!;
    this.sql.exec("INSERT OR IGNORE INTO subscription (grp, topic) VALUES (?, ?)", group, topic);
    return config;
  }

  subscriptions(group: string): string[] {
    return this.sql
      .exec<{ topic: string }>("SELECT topic FROM subscription WHERE grp = ? ORDER BY topic", group)
      .toArray()
      .map((r) => r.topic);
  }

  /** Groups consuming a topic (for topic-wide stats). */
  subscribers(topic: string): string[] {
    return this.sql
      .exec<{ grp: string }>("SELECT grp FROM subscription WHERE topic = ? ORDER BY grp", topic)
      .toArray()
      .map((r) => r.grp);
  }

  // ---- membership ----------------------------------------------------------

  /**
   * Records a pull consumer's heartbeat and answers the live members and its
   * share of each topic's queues. A `clientId` belongs to the sender (`owner`)
   * whose heartbeat registered it until it expires, so nobody else can change
   * its topics; a new member is refused once the group has
   * {@link Limits.maxMembersPerGroup} live ones. Those refusals are answered
   * as outcomes (see broker/outcome.ts), not thrown.
   */
  heartbeat(group: string, clientId: string, topics: string[], owner: string): Outcome<Membership> {
    return answerNow(() => this.#heartbeat(group, clientId, topics, owner));
  }

  #heartbeat(group: string, clientId: string, topics: string[], owner: string): Membership {
    const now = Date.now();
    this.getGroup(group, true);
    this.sql.exec(
      "DELETE FROM member WHERE grp = ? AND last_seen < ?",
      group,
      now - Limits.memberTimeoutMs,
    );
    this.checkMember(group, clientId, owner);
    this.sql.exec(
      "INSERT OR REPLACE INTO member (grp, client_id, topics, last_seen, owner) VALUES (?, ?, ?, ?, ?)",
      group,
      clientId,
      JSON.stringify(topics),
      now,
      owner,
    );
    for (const t of topics) {
      this.sql.exec("INSERT OR IGNORE INTO subscription (grp, topic) VALUES (?, ?)", group, t);
    }
    const members = this.members(group, now);
    const assignment: Record<string, number[]> = {};
    for (const t of topics) {
      const config = this.getTopic(t);
      if (!config) continue;
      const sharing = members.filter((m) => m.topics.includes(t)).map((m) => m.clientId);
      assignment[t] = assignQueues(sharing.indexOf(clientId), sharing.length, config.queues);
    }
    return { members: members.map((m) => m.clientId), assignment };
  }

  /** Refuses a heartbeat for a live member of another sender, or a new member of a full group. */
  private checkMember(group: string, clientId: string, owner: string): void {
    const held = this.sql
      .exec<{ owner: string | null }>(
        "SELECT owner FROM member WHERE grp = ? AND client_id = ?",
        group,
        clientId,
      )
      .toArray()[0];
    if (held) {
      // A member from before owners were recorded is claimed by its next heartbeat.
      if (held.owner !== null && held.owner !== owner) {
        throw new EdgemqError(
          "FORBIDDEN",
          `clientId ${clientId} of group ${group} belongs to another sender until it misses its heartbeats for ${Limits.memberTimeoutMs / 1000} s`,
        );
      }
      return;
    }
    const live = this.sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM member WHERE grp = ?", group)
      .one().n;
    if (live >= Limits.maxMembersPerGroup) {
      throw new EdgemqError(
        "GROUP_FULL",
        `group ${group} has ${live} live members, the most it may have`,
      );
    }
  }

  members(
    group: string,
    now = Date.now(),
  ): { clientId: string; topics: string[]; lastSeen: number }[] {
    const rows = this.sql
      .exec<{ client_id: string; topics: string; last_seen: number }>(
        "SELECT client_id, topics, last_seen FROM member WHERE grp = ? ORDER BY client_id",
        group,
      )
      .toArray()
      .map((r) => ({
        clientId: r.client_id,
        topics: JSON.parse(r.topics) as string[],
        lastSeen: r.last_seen,
      }));
    return liveMembers(rows, now, Limits.memberTimeoutMs);
  }

  // ---- producer groups -----------------------------------------------------

  /**
   * Creates or updates a producer group. The answer carries `signingSecret`
   * only when a secret was just made: with the group, on `rotateSecret`, or on
   * the first PUT of a group made before secrets existed. It is never shown
   * otherwise.
   */
  putProducerGroup(
    name: string,
    input: ProducerGroupInput,
  ): ProducerGroupConfig & { signingSecret?: string } {
    const now = Date.now();
    const previous = this.read<ProducerGroupConfig>("producer_group", name);
    const config: ProducerGroupConfig = {
      producerGroup: name,
      checkUrl: input.checkUrl !== undefined ? input.checkUrl : (previous?.checkUrl ?? null),
      checkAfterMs: input.checkAfterMs ?? previous?.checkAfterMs ?? 6000,
      checkIntervalMs: input.checkIntervalMs ?? previous?.checkIntervalMs ?? 60_000,
      maxChecks: input.maxChecks ?? previous?.maxChecks ?? 15,
    };
    this.write("producer_group", name, config);
    const owner = producerGroupOwner(name);
    const secret = input.rotateSecret
      ? this.secrets.rotate(owner, now)
      : this.secrets.ensure(owner, now);
    return secret === null ? config : { ...config, signingSecret: secret };
  }

  /**
   * The secrets that sign a producer group's check-backs now (the current one
   * first, the one before while a rotation overlaps); empty for an unknown
   * group. Read by the shard when a check runs, so a rotation applies to
   * transactions already open.
   */
  producerGroupSecrets(name: string): string[] {
    return this.secrets.valid(producerGroupOwner(name), Date.now());
  }

  // ---- push subscriptions -------------------------------------------------

  /**
   * Creates or updates a push subscription and its consumer group (same
   * name): the group takes the subscription's retry policy and order mode,
   * and is recorded as consuming the topic. The topic must exist (400 naming
   * it otherwise, nothing stored). The answer carries `signingSecret` only
   * when one was just made (create, or `rotateSecret`). Answered as an
   * outcome (see broker/outcome.ts).
   */
  putPush(
    name: string,
    input: PushInput,
  ): Outcome<{ config: PushConfig; group: GroupConfig; signingSecret?: string }> {
    return answerNow(() => {
      const now = Date.now();
      const previous = this.read<PushConfig>("push", name);
      const config = mergePush(name, previous, input, now);
      if (!this.getTopic(config.topic)) {
        throw badRequest(`topic ${config.topic} does not exist (create it first)`);
      }
      // Dropped when a topic is deleted, so a stored subscription always names a live topic.
      this.sql.exec(
        "INSERT OR REPLACE INTO push (name, topic, config) VALUES (?, ?, ?)",
        name,
        config.topic,
        JSON.stringify(config),
      );
      const group = this.putGroup(name, {
        maxReconsumeTimes: config.maxReconsumeTimes,
        orderly: config.orderly,
        retryDelaysMs: config.retryDelaysMs,
      });
      this.sql.exec(
        "INSERT OR IGNORE INTO subscription (grp, topic) VALUES (?, ?)",
        name,
        config.topic,
      );
      const owner = pushSubscriptionOwner(name);
      const secret = input.rotateSecret
        ? this.secrets.rotate(owner, now)
        : this.secrets.ensure(owner, now);
      return secret === null ? { config, group } : { config, group, signingSecret: secret };
    });
  }

  getPush(name: string): PushConfig | null {
    return this.read<PushConfig>("push", name);
  }

  listPush(): PushConfig[] {
    return this.sql
      .exec<{ config: string }>("SELECT config FROM push ORDER BY name")
      .toArray()
      .map((r) => JSON.parse(r.config) as PushConfig);
  }

  /** The push subscriptions of a topic (installed on each of its shards). */
  pushOfTopic(topic: string): PushConfig[] {
    return this.sql
      .exec<{ config: string }>("SELECT config FROM push WHERE topic = ? ORDER BY name", topic)
      .toArray()
      .map((r) => JSON.parse(r.config) as PushConfig);
  }

  /** Deletes a push subscription and its secrets; its group (offsets, dead letters) stays. */
  deletePush(name: string): PushConfig | null {
    const config = this.read<PushConfig>("push", name);
    this.sql.exec("DELETE FROM push WHERE name = ?", name);
    this.secrets.drop(pushSubscriptionOwner(name));
    return config;
  }

  /**
   * The secrets that sign a push subscription's deliveries now (current
   * first, the one before while a rotation overlaps); empty when it has none.
   */
  pushSecrets(name: string): string[] {
    return this.secrets.valid(pushSubscriptionOwner(name), Date.now());
  }

  getProducerGroup(name: string): ProducerGroupConfig | null {
    return this.read<ProducerGroupConfig>("producer_group", name);
  }

  listProducerGroups(): ProducerGroupConfig[] {
    return this.sql
      .exec<{ config: string }>("SELECT config FROM producer_group ORDER BY name")
      .toArray()
      .map((r) => JSON.parse(r.config) as ProducerGroupConfig);
  }
}
