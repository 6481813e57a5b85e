/**
 * Config bodies of the admin calls: `PUT /v1/topics/{topic}`,
 * `PUT /v1/groups/{group}` and `PUT /v1/producer-groups/{pg}`. Every field is
 * optional (the registry merges the given ones into the stored or default
 * config); an unknown field is refused rather than ignored.
 */
import { badRequest } from "../errors.ts";
import { DefaultRetryDelaysMs, Limits } from "../limits.ts";
import {
  type GroupConfig,
  type OverflowPolicy,
  OverflowPolicies,
  type ProducerGroupConfig,
} from "../types.ts";
import { outboundUrlAllowed } from "../signing.ts";
import { intField, isObject } from "./fields.ts";

/** The topic config fields a PUT may set, checked. */
export interface TopicConfigInput {
  queues?: number;
  retentionMs?: number;
  maxMessageBytes?: number;
  maxBacklogMessages?: number | null;
  maxBacklogBytes?: number | null;
  overflowPolicy?: OverflowPolicy;
}

/** Reads a topic config body (optional: absent changes nothing). */
export function parseTopicConfig(body: unknown): TopicConfigInput {
  if (body === undefined || body === null) return {};
  if (!isObject(body)) throw badRequest("body must be an object");
  const allowed = new Set([
    "queues",
    "retentionMs",
    "maxMessageBytes",
    "maxBacklogMessages",
    "maxBacklogBytes",
    "overflowPolicy",
    "topic",
  ]);
  for (const k of Object.keys(body)) if (!allowed.has(k)) throw badRequest(`unknown field ${k}`);
  const out: TopicConfigInput = {};
  const queues = intField(body, "queues", 1, Limits.maxQueues);
  if (queues !== undefined) out.queues = queues;
  const retentionMs = intField(body, "retentionMs", Limits.minRetentionMs, Limits.maxRetentionMs);
  if (retentionMs !== undefined) out.retentionMs = retentionMs;
  const maxMessageBytes = intField(body, "maxMessageBytes", 1, Limits.maxMessageBytesCeiling);
  if (maxMessageBytes !== undefined) out.maxMessageBytes = maxMessageBytes;
  for (const key of ["maxBacklogMessages", "maxBacklogBytes"] as const) {
    if (body[key] === null) out[key] = null;
    else {
      const v = intField(body, key, 1, Number.MAX_SAFE_INTEGER);
      if (v !== undefined) out[key] = v;
    }
  }
  if (body.overflowPolicy !== undefined) {
    if (!OverflowPolicies.includes(body.overflowPolicy as OverflowPolicy)) {
      throw badRequest(`overflowPolicy must be one of ${OverflowPolicies.join(", ")}`);
    }
    out.overflowPolicy = body.overflowPolicy as OverflowPolicy;
  }
  return out;
}

/**
 * Checks a topic's merged config for bounds that contradict each other: a
 * byte bound below `maxMessageBytes` would refuse (or drop) a message the
 * topic itself accepts, so it is refused up front.
 */
export function checkBacklogBounds(config: {
  maxMessageBytes: number;
  maxBacklogBytes: number | null;
}): void {
  if (config.maxBacklogBytes !== null && config.maxBacklogBytes < config.maxMessageBytes) {
    throw badRequest(
      `maxBacklogBytes (${config.maxBacklogBytes}) must not be smaller than maxMessageBytes (${config.maxMessageBytes})`,
    );
  }
}

export type GroupConfigInput = Partial<
  Pick<GroupConfig, "maxReconsumeTimes" | "orderly" | "retryDelaysMs">
>;

/** Reads a consumer group config body (optional). */
export function parseGroupConfig(body: unknown): GroupConfigInput {
  if (body === undefined || body === null) return {};
  if (!isObject(body)) throw badRequest("body must be an object");
  const allowed = new Set(["maxReconsumeTimes", "orderly", "retryDelaysMs", "group"]);
  for (const k of Object.keys(body)) if (!allowed.has(k)) throw badRequest(`unknown field ${k}`);
  const out: GroupConfigInput = {};
  const max = intField(body, "maxReconsumeTimes", 0, Limits.maxMaxReconsumeTimes);
  if (max !== undefined) out.maxReconsumeTimes = max;
  if (body.orderly !== undefined) {
    if (typeof body.orderly !== "boolean") throw badRequest("orderly must be a boolean");
    out.orderly = body.orderly;
  }
  if (body.retryDelaysMs !== undefined) {
    const d = body.retryDelaysMs;
    if (
      !Array.isArray(d) ||
      d.length === 0 ||
      d.length > Limits.maxRetryDelays ||
      !d.every((x) => Number.isSafeInteger(x) && x >= 0 && x <= Limits.maxDelayMs)
    ) {
      throw badRequest(
        `retryDelaysMs must be 1..${Limits.maxRetryDelays} integers from 0 to ${Limits.maxDelayMs}`,
      );
    }
    out.retryDelaysMs = d as number[];
  }
  return out;
}

/** The config of a group created implicitly (by its first receive, pull or commit). */
export function defaultGroupConfig(group: string, now: number): GroupConfig {
  return {
    group,
    maxReconsumeTimes: Limits.defaultMaxReconsumeTimes,
    orderly: false,
    retryDelaysMs: [...DefaultRetryDelaysMs],
    createdAt: now,
    updatedAt: now,
  };
}

export type ProducerGroupInput = Partial<Omit<ProducerGroupConfig, "producerGroup">> & {
  /** Replace the signing secret (the old one signs 24 h more); the answer shows the new one. */
  rotateSecret?: boolean;
};

/**
 * Reads a producer group config body (optional). `checkUrl` must be
 * https://, or http:// to a loopback host; `local` (the broker runs on this
 * machine, `npm start`) takes http:// anywhere (see {@link outboundUrlAllowed}).
 */
export function parseProducerGroupConfig(
  body: unknown,
  opts: { local: boolean } = { local: false },
): ProducerGroupInput {
  if (body === undefined || body === null) return {};
  if (!isObject(body)) throw badRequest("body must be an object");
  const allowed = new Set([
    "checkUrl",
    "checkAfterMs",
    "checkIntervalMs",
    "maxChecks",
    "producerGroup",
    "rotateSecret",
  ]);
  for (const k of Object.keys(body)) if (!allowed.has(k)) throw badRequest(`unknown field ${k}`);
  const out: ProducerGroupInput = {};
  if (body.checkUrl !== undefined) {
    if (body.checkUrl === null) out.checkUrl = null;
    else {
      if (typeof body.checkUrl !== "string" || body.checkUrl.length > 2048) {
        throw badRequest("checkUrl must be an http(s) URL");
      }
      let url: URL;
      try {
        url = new URL(body.checkUrl);
      } catch {
        throw badRequest("checkUrl must be an http(s) URL");
      }
      if (url.protocol !== "https:" && url.protocol !== "http:") {
        throw badRequest("checkUrl must be an http(s) URL");
      }
      if (!outboundUrlAllowed(url, opts.local)) {
        throw badRequest(
          "checkUrl must be https:// (http:// is accepted only for loopback hosts or a local broker)",
        );
      }
      out.checkUrl = url.toString();
    }
  }
  if (body.rotateSecret !== undefined) {
    if (typeof body.rotateSecret !== "boolean") throw badRequest("rotateSecret must be a boolean");
    if (body.rotateSecret) out.rotateSecret = true;
  }
  const after = intField(body, "checkAfterMs", 0, Limits.maxDelayMs);
  if (after !== undefined) out.checkAfterMs = after;
  const interval = intField(body, "checkIntervalMs", 1000, Limits.maxDelayMs);
  if (interval !== undefined) out.checkIntervalMs = interval;
  const maxChecks = intField(body, "maxChecks", 1, 1000);
  if (maxChecks !== undefined) out.maxChecks = maxChecks;
  return out;
}
