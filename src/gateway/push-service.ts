/**
 * Push subscriptions at the gateway: the registry holds their config (and
 * their consumer group's), every shard of the topic holds a snapshot and
 * delivers its own queue (src/broker/store/push.ts). A PUT stores the config
 * in the registry first, then installs it on each shard; a DELETE removes it
 * from the registry, then from each shard. Both are idempotent, so a call cut
 * short is completed by repeating it.
 */
import { unwrap } from "../broker/outcome.ts";
import { EdgemqError } from "../protocol/errors.ts";
import type {
  PushConfig,
  PushInfo,
  PushInput,
  PushPutResult,
  PushShardStats,
  PushStats,
} from "../protocol/push.ts";
import type { GroupConfig } from "../protocol/types.ts";
import { type BrokerService, rpc } from "./service.ts";

function notFound(name: string): EdgemqError {
  return new EdgemqError("NOT_FOUND", `push subscription ${name} not found`);
}

export class PushService {
  constructor(private readonly svc: BrokerService) {}

  /** The topic's queue count as the registry has it now (not a cached route: queues may just have grown). */
  private async queues(topic: string): Promise<number[]> {
    const config = await rpc(() => this.svc.registry().getTopic(topic));
    if (!config) throw new EdgemqError("TOPIC_NOT_FOUND", `topic ${topic} not found`);
    return Array.from({ length: config.queues }, (_, q) => q);
  }

  /** Installs a subscription on every shard of its topic. */
  async install(config: PushConfig, group: GroupConfig): Promise<void> {
    const queues = await this.queues(config.topic);
    await Promise.all(
      queues.map(async (q) =>
        unwrap(await rpc(() => this.svc.shard(config.topic, q).pushInstall(config, group))),
      ),
    );
  }

  /** Creates or updates a subscription; `signingSecret` comes back on create and rotation only. */
  async put(name: string, input: PushInput): Promise<PushPutResult> {
    const stored = unwrap(await rpc(() => this.svc.registry().putPush(name, input)));
    await this.install(stored.config, stored.group);
    return stored.signingSecret === undefined
      ? stored.config
      : { ...stored.config, signingSecret: stored.signingSecret };
  }

  /** After a topic's queues grew: its subscriptions are installed on the new shards too. */
  async installAllOf(topic: string): Promise<void> {
    const registry = this.svc.registry();
    const list = await rpc(() => registry.pushOfTopic(topic));
    for (const config of list) {
      const group = await rpc(() => registry.getGroup(config.name, true));
      await this.install(config, group!);
    }
  }

  async list(): Promise<PushConfig[]> {
    return rpc(() => this.svc.registry().listPush());
  }

  /** A subscription's config and its stats, summed over the topic's queues. */
  async get(name: string): Promise<PushInfo> {
    const config = await rpc(() => this.svc.registry().getPush(name));
    if (!config) throw notFound(name);
    const queues = await this.queues(config.topic);
    const [perShard, group] = await Promise.all([
      Promise.all(
        queues.map(async (q) =>
          unwrap(await rpc(() => this.svc.shard(config.topic, q).pushStats(name))),
        ),
      ),
      this.svc.groupTopicStats(name, config.topic),
    ]);
    return { ...config, stats: sumStats(perShard, group) };
  }

  /** Stops a subscription's deliveries; its group, offsets and dead letters stay. */
  async delete(name: string): Promise<void> {
    const config = await rpc(() => this.svc.registry().deletePush(name));
    if (!config) throw notFound(name);
    const queues = await this.queues(config.topic).catch(() => []);
    await Promise.all(
      queues.map(async (q) =>
        unwrap(await rpc(() => this.svc.shard(config.topic, q).pushRemove(name))),
      ),
    );
  }
}

/** A subscription's stats from its shards' counters and its group's progress on each queue. */
export function sumStats(
  shards: readonly (PushShardStats | null)[],
  group: readonly { lag: number; inflight: number; dlq: number }[],
): PushStats {
  const out: PushStats = {
    delivered: 0,
    failed: 0,
    inflight: 0,
    lag: 0,
    dlq: 0,
    lastError: null,
    lastErrorAt: null,
    failures: 0,
  };
  for (const s of shards) {
    if (!s) continue;
    out.failures = Math.max(out.failures, s.failures);
    out.delivered += s.delivered;
    out.failed += s.failed;
    if (s.lastErrorAt !== null && (out.lastErrorAt === null || s.lastErrorAt > out.lastErrorAt)) {
      out.lastError = s.lastError;
      out.lastErrorAt = s.lastErrorAt;
    }
  }
  for (const g of group) {
    out.inflight += g.inflight;
    out.lag += g.lag;
    out.dlq += g.dlq;
  }
  return out;
}
