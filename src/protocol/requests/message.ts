/**
 * One message of a send or a transaction, checked and normalized for
 * storage. The gateway parses it as the request arrives, before the topic is
 * looked up, so the topic's own size limit is checked afterwards with
 * {@link checkMessageSize}; the SDK parses it before it is queued, against
 * the contract's ceiling.
 */
import { EdgemqError, badRequest } from "../errors.ts";
import { DelayLevelsMs, Limits } from "../limits.ts";
import { parseTraceContext } from "../trace.ts";
import type { Encoding } from "../types.ts";
import { intField, isObject, stringField, utf8Length } from "./fields.ts";

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
  /** W3C trace context (src/protocol/trace.ts), absent when the message has none. */
  traceparent?: string;
  tracestate?: string;
}

/** What {@link parseMessage} needs besides the message. */
export interface MessageContext {
  /** The clock scheduled times are taken from. */
  now: number;
  /** Makes a msgId for a message that brings none. */
  newId: () => string;
  /** Position in its request, named in errors (`messages[index]: …`). */
  index?: number;
  /**
   * The body size limit, checked where the body is read. Omitted by the
   * gateway, which checks the topic's own limit once the topic is known.
   */
  maxBytes?: number;
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
  "traceparent",
  "tracestate",
]);

/** Prefixes an error with the message's place in its request and carries its index. */
function at(index: number, e: unknown): unknown {
  if (!(e instanceof EdgemqError)) return e;
  return new EdgemqError(e.code, `messages[${index}]: ${e.message}`, { ...e.details, index });
}

/** Checks one message of a send or a transaction. */
export function parseMessage(raw: unknown, ctx: MessageContext): NormalizedMessage {
  const { now, newId, index = 0, maxBytes } = ctx;
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
    if (maxBytes !== undefined) sizeWithin(size, maxBytes);
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
    const trace = parseTraceContext(raw.traceparent, raw.tracestate);
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
      ...(trace.traceparent !== null && { traceparent: trace.traceparent }),
      ...(trace.tracestate !== null && { tracestate: trace.tracestate }),
    };
  } catch (e) {
    throw at(index, e);
  }
}

function sizeWithin(size: number, maxBytes: number): void {
  if (size > maxBytes) {
    throw new EdgemqError("MESSAGE_TOO_LARGE", `body is ${size} bytes; the limit is ${maxBytes}`);
  }
}

/**
 * Checks a parsed message against a topic's `maxMessageBytes`, with the
 * error {@link parseMessage} gives when it is told the limit.
 */
export function checkMessageSize(m: NormalizedMessage, maxBytes: number, index = 0): void {
  try {
    sizeWithin(m.size, maxBytes);
  } catch (e) {
    throw at(index, e);
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
