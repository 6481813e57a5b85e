/**
 * Push subscriptions on the wire (api.md, "Push subscriptions: delivery to
 * an HTTP endpoint"): types, limits and how a PUT merges over the stored
 * config, shared by the Worker, the SDK, the CLI and the console. The
 * request parser is requests/push.ts; delivery is the queue shard's
 * (src/broker/store/push.ts, src/broker/outbound/push-delivery.ts).
 */
import { badRequest } from "./errors.ts";
import { DefaultRetryDelaysMs, Limits } from "./limits.ts";

export const PushLimits = {
  /** Deliveries in flight per subscription: the documented range and default. */
  minConcurrency: 1,
  maxConcurrency: 256,
  defaultConcurrency: 8,
  /** How long one delivery may take before it counts as failed (ms). */
  minTimeoutMs: 100,
  maxTimeoutMs: 120_000,
  defaultTimeoutMs: 10_000,
  /** Longest endpoint URL. */
  maxUrlLength: 2048,
  /** Bytes of a PUT body. */
  maxBodyBytes: 64 * 1024,
  /**
   * A `Retry-After` longer than this is read as this: an endpoint cannot park
   * a message for longer than an hour per attempt.
   */
  maxRetryAfterMs: 3600_000,
} as const;

/** A push subscription's config as stored and answered; `name` is also its consumer group. */
export interface PushConfig {
  name: string;
  topic: string;
  url: string;
  /** The subscription's filter (`*`, tags, or `sql:`), as for receive. */
  filter: string;
  maxConcurrency: number;
  timeoutMs: number;
  maxReconsumeTimes: number;
  retryDelaysMs: number[];
  orderly: boolean;
  paused: boolean;
  createdAt: number;
  updatedAt: number;
}

/** What a PUT may set, checked; on create `topic` and `url` are required. */
export interface PushInput {
  topic?: string;
  url?: string;
  filter?: string;
  maxConcurrency?: number;
  timeoutMs?: number;
  maxReconsumeTimes?: number;
  retryDelaysMs?: number[];
  orderly?: boolean;
  paused?: boolean;
  /** Replace the signing secret (the old one signs 24 h more); the answer shows the new one. */
  rotateSecret?: boolean;
}

/** Delivery numbers of a subscription, summed over its topic's queues. */
export interface PushStats {
  /** Deliveries answered 2xx. */
  delivered: number;
  /** Deliveries that failed (an answer other than 2xx, no answer in time, a network error). */
  failed: number;
  /** Deliveries claimed and not yet settled. */
  inflight: number;
  /** Messages of the topic the group has not consumed yet. */
  lag: number;
  /** Messages in the group's dead-letter queue. */
  dlq: number;
  /** The latest failure (`HTTP 503`, `timeout: …`, …) and when; kept after later successes. */
  lastError: string | null;
  lastErrorAt: number | null;
  /**
   * The endpoint's failures in a row now (the most of any queue; 0 once a
   * delivery succeeds). While above 0 the subscription backs off and
   * delivers one message at a time per queue.
   */
  failures: number;
}

/** `GET /v1/push/{name}`: the config plus its stats. */
export interface PushInfo extends PushConfig {
  stats: PushStats;
}

/** A PUT's answer: the config, and `signingSecret` when one was just made (create or rotation). */
export type PushPutResult = PushConfig & { signingSecret?: string };

/**
 * Buckets of the delivery latency histogram, in ms (upper bounds; the last
 * is +Inf). Prometheus reads them as seconds in `/metrics`.
 */
export const PUSH_LATENCY_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];

/** One shard's counters of one subscription, as `/metrics` reads them. */
export interface PushShardStats {
  queue: number;
  delivered: number;
  failed: number;
  lastError: string | null;
  lastErrorAt: number | null;
  /** Consecutive failures now (0 once a delivery succeeds). */
  failures: number;
  /** Until when the subscription waits before its next delivery from this queue (back-off). */
  backoffUntil: number | null;
  /** Delivery latency: counts per bucket of {@link PUSH_LATENCY_BUCKETS_MS} plus +Inf, and the sum in ms. */
  latency: { buckets: number[]; sumMs: number; count: number };
}

/**
 * A PUT merged over the previous config (null on create): fields not given
 * keep their value. Throws BAD_REQUEST naming a field a new subscription lacks.
 */
export function mergePush(
  name: string,
  previous: PushConfig | null,
  input: PushInput,
  now: number,
): PushConfig {
  const topic = input.topic ?? previous?.topic;
  const url = input.url ?? previous?.url;
  if (topic === undefined) throw badRequest("topic is required for a new push subscription");
  if (url === undefined) throw badRequest("url is required for a new push subscription");
  if (previous && topic !== previous.topic) {
    // The group's offsets, in-flight claims and dead letters live on the old topic's shards.
    throw badRequest(
      `topic cannot change (the subscription delivers ${previous.topic}); DELETE it and PUT it anew, or use another name`,
    );
  }
  return {
    name,
    topic,
    url,
    filter: input.filter ?? previous?.filter ?? "*",
    maxConcurrency:
      input.maxConcurrency ?? previous?.maxConcurrency ?? PushLimits.defaultConcurrency,
    timeoutMs: input.timeoutMs ?? previous?.timeoutMs ?? PushLimits.defaultTimeoutMs,
    maxReconsumeTimes:
      input.maxReconsumeTimes ?? previous?.maxReconsumeTimes ?? Limits.defaultMaxReconsumeTimes,
    retryDelaysMs: input.retryDelaysMs ?? previous?.retryDelaysMs ?? [...DefaultRetryDelaysMs],
    orderly: input.orderly ?? previous?.orderly ?? false,
    paused: input.paused ?? previous?.paused ?? false,
    createdAt: previous?.createdAt ?? now,
    updatedAt: now,
  };
}
