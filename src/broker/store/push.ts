/**
 * Push subscriptions of one shard (api.md, "Push subscriptions"): the
 * shard delivers its own queue's messages to the subscriptions of its topic.
 * A subscription is a consumer group, so a delivery is a receive of that
 * group (receive.ts: the claim, with an invisible time past the delivery's
 * timeout), and its answer an ack or a nack (consumption.ts: retries with
 * the group's delays, the dead-letter queue once). Everything between two
 * deliveries is in these tables: a claim lost with the object lapses and is
 * delivered again, so nothing is held in memory and the shard may hibernate.
 *
 * This module is SQL only; the fetch itself is outbound/push-delivery.ts,
 * run by the object outside any transaction.
 */
import {
  PUSH_LATENCY_BUCKETS_MS,
  type PushConfig,
  type PushShardStats,
} from "../../protocol/push.ts";
import type { MessageFilter } from "../../protocol/filter.ts";
import type { GroupConfig, Message } from "../../protocol/types.ts";
import {
  latencyBucket,
  pushBackoffUntil,
  pushClaimMs,
  pushLimit,
  pushRetryDelayMs,
  PUSH_FETCHES_PER_SHARD,
  fairGrants,
  pushShare,
} from "../timers/push-timing.ts";
import type { Consumption } from "./consumption.ts";
import type { Receiving } from "./receive.ts";
import { PopState } from "./schema.ts";
import type { StoreState } from "./state.ts";

interface PushRow {
  name: string;
  config: string;
  delivered: number;
  failed: number;
  failures: number;
  backoff_until: number | null;
  last_error: string | null;
  last_error_at: number | null;
  latency: string | null;
  [k: string]: SqlStorageValue;
}

/** One delivery to make: claimed in the shard, fetched by the object. */
export interface PushClaim {
  /** The subscription (and its group). */
  name: string;
  url: string;
  timeoutMs: number;
  /** The message as delivered (reconsumeTimes counts earlier deliveries). */
  message: Message;
  /** The claim's receipt handle inside the shard. */
  handle: string;
}

/** How a delivery ended, as the object saw it. */
export interface PushOutcome {
  ok: boolean;
  /** What failed (`HTTP 500`, `timeout after 100 ms`, …); null when ok. */
  error: string | null;
  /** The endpoint's `Retry-After` in ms (429/503 only); null when none. */
  retryAfterMs: number | null;
  /** From the start of the fetch to its answer (or its failure). */
  latencyMs: number;
}

/** The latency histogram as stored: counts per bucket (+Inf last), sum and count. */
interface Latency {
  b: number[];
  s: number;
  c: number;
}

const emptyLatency = (): Latency => ({
  b: PUSH_LATENCY_BUCKETS_MS.map(() => 0).concat(0),
  s: 0,
  c: 0,
});

/** A shard's push subscriptions: their config, claims, settlements and counters. */
export class PushStore {
  /** Where the next claim round starts, so no subscription is always served first. */
  private turn = 0;

  constructor(
    private readonly state: StoreState,
    private readonly receiving: Receiving,
    private readonly consumption: Consumption,
  ) {}

  private rows(): PushRow[] {
    return this.state.sql.exec<PushRow>("SELECT * FROM push_sub ORDER BY name").toArray();
  }

  private row(name: string): PushRow | undefined {
    return this.state.sql.exec<PushRow>("SELECT * FROM push_sub WHERE name = ?", name).toArray()[0];
  }

  /**
   * Installs or updates a subscription (and its group's config snapshot);
   * its deliveries start at once. Counters are kept across updates.
   */
  install(config: PushConfig, group: GroupConfig, now: number): void {
    this.state.topicConfig();
    this.state.rememberGroup(group, now);
    this.consumption.ensureGroupRow(config.name, now);
    // A resumed or changed subscription tries a failing endpoint again now (one probe at a time).
    this.state.sql.exec(
      `INSERT INTO push_sub (name, config) VALUES (?, ?)
       ON CONFLICT (name) DO UPDATE SET config = excluded.config, backoff_until = NULL`,
      config.name,
      JSON.stringify(config),
    );
    this.state.effects.timer(now);
  }

  /** Removes a subscription: no more deliveries (its group, offsets and claims stay). */
  remove(name: string): boolean {
    const existed = this.row(name) !== undefined;
    this.state.sql.exec("DELETE FROM push_sub WHERE name = ?", name);
    return existed;
  }

  /** Whether any subscription is installed and not paused (a cheap look before claiming). */
  active(): boolean {
    return this.rows().some((r) => !(JSON.parse(r.config) as PushConfig).paused);
  }

  /** The group config a subscription's deliveries use: the snapshot held, else one from its config. */
  private groupOf(config: PushConfig): GroupConfig {
    return (
      this.state.groupConfig(config.name) ?? {
        group: config.name,
        maxReconsumeTimes: config.maxReconsumeTimes,
        orderly: config.orderly,
        retryDelaysMs: config.retryDelaysMs,
        createdAt: config.createdAt,
        updatedAt: config.updatedAt,
      }
    );
  }

  /**
   * Claims the deliveries to make now, at most `free` (the shard's fetch
   * slots not in use): for each subscription not paused and not backing off,
   * up to its bound in flight on this queue (its share of `maxConcurrency`,
   * one while its endpoint fails) less the claims it holds, the slots split
   * fairly. An orderly subscription's claims are one per sharding key, in
   * offset order (the group's receive sees to it).
   */
  claim(now: number, free: number, compile: (filter: string) => MessageFilter): PushClaim[] {
    if (free <= 0) return [];
    const topic = this.state.topicConfig();
    const ready: { config: PushConfig; limit: number; held: number }[] = [];
    for (const r of this.rows()) {
      const config = JSON.parse(r.config) as PushConfig;
      if (config.paused || (r.backoff_until !== null && r.backoff_until > now)) continue;
      const limit = pushLimit(
        pushShare(config.maxConcurrency, topic.queues, this.state.queue),
        r.failures,
      );
      const held = this.state.sql
        .exec<{ n: number }>(
          `SELECT count(*) AS n FROM inflight WHERE grp = ? AND state = ${PopState.inflight} AND visible_at > ?`,
          config.name,
          now,
        )
        .one().n;
      if (limit > held) ready.push({ config, limit, held });
    }
    if (ready.length === 0) return [];
    // Rotate who is served first, so slots left over do not always go to the same name.
    const start = this.turn++ % ready.length;
    const order = [...ready.slice(start), ...ready.slice(0, start)];
    const out: PushClaim[] = [];
    const take = (sub: (typeof order)[number], n: number): number => {
      if (n <= 0) return 0;
      const claimed = this.receiving.receive(
        this.groupOf(sub.config),
        n,
        pushClaimMs(sub.config.timeoutMs),
        compile(sub.config.filter),
        now,
      );
      for (const c of claimed) {
        out.push({
          name: sub.config.name,
          url: sub.config.url,
          timeoutMs: sub.config.timeoutMs,
          message: c.message,
          handle: c.handle,
        });
      }
      sub.held += claimed.length;
      return claimed.length;
    };
    const grants = fairGrants(PUSH_FETCHES_PER_SHARD, free, order);
    // First each its fair part; then what is left to those that took all theirs
    // (they may have more): the others had nothing more to send, so no one waits for these slots.
    const full = order.filter((sub, i) => take(sub, grants[i]!) === grants[i]);
    let left = free - out.length;
    for (const sub of full) {
      if (left <= 0) break;
      left -= take(sub, Math.min(sub.limit - sub.held, left));
    }
    return out;
  }

  /**
   * Records how a delivery ended: a 2xx acks the claim; anything else nacks
   * it with the subscription's delay for its delivery count (or the
   * endpoint's longer `Retry-After`), which after `maxReconsumeTimes` moves it
   * to the group's dead-letter queue, once. A claim that lapsed meanwhile
   * (the answer came past its invisible time) is already being retried and is
   * left to that. A subscription deleted meanwhile still settles its claim.
   */
  settle(claim: PushClaim, outcome: PushOutcome, now: number): void {
    const row = this.row(claim.name);
    const ref = { offset: claim.message.offset, handle: claim.handle };
    const config = row ? (JSON.parse(row.config) as PushConfig) : null;
    const group = config ? this.groupOf(config) : this.state.groupConfig(claim.name);
    if (outcome.ok) this.consumption.ack(claim.name, [ref], now);
    else if (group) {
      const deliveries = claim.message.reconsumeTimes + 1;
      const delay = pushRetryDelayMs(deliveries, group.retryDelaysMs, outcome.retryAfterMs);
      this.consumption.nack(group, [ref], delay, now);
    }
    if (!row) return;
    const latency = row.latency ? (JSON.parse(row.latency) as Latency) : emptyLatency();
    latency.b[latencyBucket(outcome.latencyMs)]!++;
    latency.s += outcome.latencyMs;
    latency.c++;
    if (outcome.ok) {
      this.state.sql.exec(
        `UPDATE push_sub SET delivered = delivered + 1, failures = 0, backoff_until = NULL, latency = ?
         WHERE name = ?`,
        JSON.stringify(latency),
        claim.name,
      );
      return;
    }
    const failures = row.failures + 1;
    const until = pushBackoffUntil(
      failures,
      group?.retryDelaysMs ?? [0],
      outcome.retryAfterMs,
      now,
    );
    this.state.sql.exec(
      `UPDATE push_sub SET failed = failed + 1, failures = ?, backoff_until = ?, last_error = ?,
         last_error_at = ?, latency = ? WHERE name = ?`,
      failures,
      until,
      outcome.error,
      now,
      JSON.stringify(latency),
      claim.name,
    );
    this.state.effects.timer(until);
  }

  /** The earliest time a backing-off subscription may deliver again (the alarm wakes for it). */
  nextDueAt(now: number): number | null {
    const row = this.state.sql
      .exec<{ t: number | null }>(
        "SELECT min(backoff_until) AS t FROM push_sub WHERE backoff_until > ?",
        now,
      )
      .one();
    return row.t;
  }

  private statsOf(r: PushRow): PushShardStats {
    const latency = r.latency ? (JSON.parse(r.latency) as Latency) : emptyLatency();
    return {
      queue: this.state.queue,
      delivered: r.delivered,
      failed: r.failed,
      lastError: r.last_error,
      lastErrorAt: r.last_error_at,
      failures: r.failures,
      backoffUntil: r.backoff_until,
      latency: { buckets: latency.b, sumMs: latency.s, count: latency.c },
    };
  }

  /** One subscription's counters on this queue, or null when it is not installed here. */
  stats(name: string): PushShardStats | null {
    const r = this.row(name);
    return r ? this.statsOf(r) : null;
  }

  /** Every installed subscription's counters on this queue (for `/metrics`). */
  allStats(): (PushShardStats & { name: string })[] {
    return this.rows().map((r) => ({ name: r.name, ...this.statsOf(r) }));
  }
}
