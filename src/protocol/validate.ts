/**
 * Validation of everything a request carries, in one place so the gateway
 * rejects bad input before any Durable Object is touched and the SDK can
 * reject it before it leaves the client. Every failure is an
 * {@link EdgemqError} with the contract's code.
 */
import { EdgemqError, badRequest } from "./errors.ts";
import { DefaultRetryDelaysMs, DelayLevelsMs, Limits } from "./limits.ts";
import { outboundUrlAllowed } from "./signing.ts";
import {
  type Encoding,
  type GroupConfig,
  type OverflowPolicy,
  OverflowPolicies,
  type ProducerGroupConfig,
} from "./types.ts";

const encoder = new TextEncoder();
// Every character below U+0080 is one UTF-8 byte.
// oxlint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

/** UTF-8 byte length of a string. */
export function utf8Length(s: string): number {
  // Most bodies are ASCII: one native scan, no copy.
  if (ASCII.test(s)) return s.length;
  return encoder.encode(s).byteLength;
}

/** Checks a topic or group name against the contract's pattern. */
export function checkName(name: string | undefined, what = "name"): string {
  if (name === undefined || !Limits.namePattern.test(name)) {
    throw new EdgemqError("INVALID_NAME", `${what} must match ${Limits.namePattern.source}`);
  }
  return name;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Reads an optional integer field within [min, max]. */
export function intField(
  obj: Record<string, unknown>,
  key: string,
  min: number,
  max: number,
): number | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw badRequest(`${key} must be an integer from ${min} to ${max}`);
  }
  return v;
}

/** Parses an integer query parameter within [min, max]; absent gives `fallback`. */
export function intParam(
  value: string | undefined | null,
  key: string,
  min: number,
  max: number,
  fallback: number,
): number;
export function intParam(
  value: string | undefined | null,
  key: string,
  min: number,
  max: number,
): number | undefined;
export function intParam(
  value: string | undefined | null,
  key: string,
  min: number,
  max: number,
  fallback?: number,
): number | undefined {
  if (value === undefined || value === null || value === "") return fallback;
  if (!/^-?\d{1,16}$/.test(value)) throw badRequest(`${key} must be an integer`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw badRequest(`${key} must be an integer from ${min} to ${max}`);
  }
  return n;
}

function stringField(
  obj: Record<string, unknown>,
  key: string,
  maxBytes: number,
  allowEmpty = false,
): string | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw badRequest(`${key} must be a string`);
  if (!allowEmpty && v.length === 0) throw badRequest(`${key} must not be empty`);
  if (!v.isWellFormed()) throw badRequest(`${key} is not valid UTF-8`);
  if (utf8Length(v) > maxBytes) throw badRequest(`${key} is longer than ${maxBytes} bytes`);
  return v;
}

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Byte size of a body in its encoding, checking that it is well formed. */
export function bodyBytes(body: string, encoding: Encoding): number {
  if (encoding === "base64") {
    if (!base64Pattern.test(body)) throw badRequest("body is not valid base64");
    const pad = body.endsWith("==") ? 2 : body.endsWith("=") ? 1 : 0;
    return (body.length / 4) * 3 - pad;
  }
  if (!body.isWellFormed()) throw badRequest("body is not valid UTF-8");
  return utf8Length(body);
}

/** A message checked and normalized for storage. */
export interface NormalizedMessage {
  msgId: string;
  body: string;
  encoding: Encoding;
  tag: string | null;
  keys: string[];
  properties: Record<string, string> | null;
  shardingKey: string | null;
  priority: number;
  expireAt: number | null;
  bornAt: number;
  /** Absolute due time for a scheduled message, null for immediate delivery. */
  deliverAt: number | null;
  /** Bytes counted against size limits and backlog bounds. */
  size: number;
  /** The producer supplied the msgId (only those are deduplicated). */
  clientMsgId: boolean;
}

const messageKeys = new Set([
  "body",
  "encoding",
  "tag",
  "keys",
  "properties",
  "shardingKey",
  "msgId",
  "delayLevel",
  "delayMs",
  "deliverAt",
  "priority",
  "expireAt",
  "bornAt",
]);

/**
 * Checks one message of a send. `index` names it in errors; `maxBytes` is the
 * topic's `maxMessageBytes`.
 */
export function normalizeMessage(
  raw: unknown,
  now: number,
  maxBytes: number,
  newId: () => string,
  index = 0,
): NormalizedMessage {
  const where = `messages[${index}]`;
  try {
    if (!isObject(raw)) throw badRequest("must be an object");
    for (const k of Object.keys(raw)) {
      if (!messageKeys.has(k)) throw badRequest(`unknown field ${k}`);
    }
    if (typeof raw.body !== "string") throw badRequest("body is required and must be a string");
    const encoding = raw.encoding ?? "utf8";
    if (encoding !== "utf8" && encoding !== "base64") {
      throw badRequest("encoding must be utf8 or base64");
    }
    const size = bodyBytes(raw.body, encoding);
    if (size > maxBytes) {
      throw new EdgemqError("MESSAGE_TOO_LARGE", `body is ${size} bytes; the limit is ${maxBytes}`);
    }
    const tag = stringField(raw, "tag", Limits.maxTagBytes) ?? null;
    if (tag !== null && /\|\||^\s|\s$|^\*$/.test(tag)) {
      throw badRequest("tag must not contain '||', be '*', or start or end with spaces");
    }
    let keys: string[] = [];
    if (raw.keys !== undefined) {
      if (!Array.isArray(raw.keys) || raw.keys.length > Limits.maxKeys) {
        throw badRequest(`keys must be an array of at most ${Limits.maxKeys} strings`);
      }
      keys = raw.keys.map((k, i) =>
        stringField({ [`keys[${i}]`]: k }, `keys[${i}]`, Limits.maxKeyBytes)!,
      );
    }
    let properties: Record<string, string> | null = null;
    if (raw.properties !== undefined) {
      if (!isObject(raw.properties)) throw badRequest("properties must be an object of strings");
      const entries = Object.entries(raw.properties);
      if (entries.length > Limits.maxProperties) {
        throw badRequest(`at most ${Limits.maxProperties} properties`);
      }
      for (const [name] of entries) {
        // `__proto__` would become a prototype in any consumer that copies properties with Object.assign.
        if (
          !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name) ||
          name.length > Limits.maxPropertyNameBytes ||
          name === "__proto__"
        ) {
          throw badRequest(
            `property name ${JSON.stringify(name.slice(0, 64))} is not an identifier`,
          );
        }
        stringField(raw.properties, name, Limits.maxPropertyValueBytes, true);
      }
      properties = entries.length ? (raw.properties as Record<string, string>) : null;
    }
    const shardingKey = stringField(raw, "shardingKey", Limits.maxShardingKeyBytes) ?? null;
    const givenId = stringField(raw, "msgId", Limits.maxMsgIdBytes);
    const priority =
      intField(raw, "priority", Limits.minPriority, Limits.maxPriority) ?? Limits.defaultPriority;
    const expireAt = intField(raw, "expireAt", 0, 8.64e15) ?? null;
    const bornAt = intField(raw, "bornAt", 0, 8.64e15) ?? now;
    const deliverAt = scheduleOf(raw, now);
    return {
      msgId: givenId ?? newId(),
      body: raw.body,
      encoding,
      tag,
      keys,
      properties,
      shardingKey,
      priority,
      expireAt,
      bornAt,
      deliverAt,
      size,
      clientMsgId: givenId !== undefined,
    };
  } catch (e) {
    if (e instanceof EdgemqError) {
      throw new EdgemqError(e.code, `${where}: ${e.message}`, { ...e.details, index });
    }
    throw e;
  }
}

/** The absolute due time of a message's delayLevel/delayMs/deliverAt, or null. */
function scheduleOf(raw: Record<string, unknown>, now: number): number | null {
  const given = ["delayLevel", "delayMs", "deliverAt"].filter((k) => raw[k] !== undefined);
  if (given.length > 1) throw badRequest("at most one of delayLevel, delayMs, deliverAt");
  const level = intField(raw, "delayLevel", 1, DelayLevelsMs.length);
  if (level !== undefined) return now + DelayLevelsMs[level - 1]!;
  const delayMs = intField(raw, "delayMs", 0, Limits.maxDelayMs);
  if (delayMs !== undefined) return delayMs === 0 ? null : now + delayMs;
  const deliverAt = intField(raw, "deliverAt", 0, 8.64e15);
  if (deliverAt !== undefined) {
    if (deliverAt > now + Limits.maxDelayMs)
      throw badRequest("deliverAt is more than 40 days ahead");
    // A time in the past means "deliver now", as the contract documents.
    return deliverAt > now ? deliverAt : null;
  }
  return null;
}

/** Reads the `{"messages": [...]}` body of a send. */
export function normalizeBatch(
  body: unknown,
  now: number,
  maxBytes: number,
  newId: () => string,
): NormalizedMessage[] {
  if (!isObject(body) || !Array.isArray(body.messages)) {
    throw badRequest('body must be {"messages": [...]}');
  }
  const list = body.messages;
  if (list.length === 0) throw badRequest("messages must not be empty");
  if (list.length > Limits.maxBatchMessages) {
    throw new EdgemqError(
      "BATCH_TOO_LARGE",
      `at most ${Limits.maxBatchMessages} messages per request; got ${list.length}`,
    );
  }
  return list.map((m, i) => normalizeMessage(m, now, maxBytes, newId, i));
}

/** The topic config fields a PUT may set, checked. */
export interface TopicConfigInput {
  queues?: number;
  retentionMs?: number;
  maxMessageBytes?: number;
  maxBacklogMessages?: number | null;
  maxBacklogBytes?: number | null;
  overflowPolicy?: OverflowPolicy;
}

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
 * Checks a producer group's config. `local`: the broker runs on this machine
 * (`npm start`), where `http://` check URLs are fine anywhere; deployed, only
 * loopback ones are (see {@link outboundUrlAllowed}).
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
