/**
 * Messages on the client side: what a producer hands to `send`, how it is
 * checked and given its msgId before it leaves, and how a consumer reads a
 * delivered body back.
 */
import { EdgemqError } from "../src/protocol/errors.ts";
import { Limits } from "../src/protocol/limits.ts";
import type { Message, MessageInput, SendResult } from "../src/protocol/types.ts";
import { checkName, utf8Length } from "../src/protocol/requests/fields.ts";
import { parseMessage } from "../src/protocol/requests/message.ts";
import { newMsgId } from "../src/protocol/msg-id.ts";

/**
 * A message as given to `Producer.send`: the contract's message plus the
 * topic it goes to, and a body that may also be bytes (sent as base64).
 *
 * Ordered send: give a `shardingKey`; messages with the same key land on the
 * same queue, in send order. Delayed send: `delayMs`, `delayLevel` (1..18,
 * RocketMQ's levels) or `deliverAt` (Unix ms, or a Date), at most one.
 */
export interface ProducerMessage extends Omit<MessageInput, "body" | "deliverAt"> {
  /** Topic to send to. */
  topic: string;
  /** Text (sent as UTF-8) or bytes (sent base64-encoded). */
  body: string | Uint8Array;
  /** Deliver at this time (scheduled message). */
  deliverAt?: number | Date;
  /** Pin the queue instead of hashing the sharding key or msgId. */
  queue?: number;
}

/** Result of a send the outbox kept for later: it is stored on this device and will be sent. */
export interface QueuedResult {
  status: "queued";
  msgId: string;
}

/** What a send resolves to: the broker's result, or `queued` when an outbox holds it. */
export type ProducerSendResult = SendResult | QueuedResult;

/** A message ready for the wire, with the topic and queue it goes to. */
export interface OutgoingMessage {
  topic: string;
  queue: number | undefined;
  /** The contract's message, always with a msgId. */
  message: MessageInput & { msgId: string };
  /** Approximate bytes of its JSON, to keep batches under the request limit. */
  size: number;
}

// A fresh msgId is time-ordered like the broker's own (see src/protocol/msg-id.ts).
export { newMsgId };

/** Base64 of bytes, without Node's Buffer. */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  // Chunks keep String.fromCharCode's argument list small.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Bytes of a base64 string. */
export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** The body of a delivered message as text (decoding base64 bodies as UTF-8). */
export function bodyText(message: Pick<Message, "body" | "encoding">): string {
  return message.encoding === "base64"
    ? new TextDecoder().decode(fromBase64(message.body))
    : message.body;
}

/** The body of a delivered message as bytes. */
export function bodyBytes(message: Pick<Message, "body" | "encoding">): Uint8Array {
  return message.encoding === "base64"
    ? fromBase64(message.body)
    : new TextEncoder().encode(message.body);
}

/**
 * Checks a message with the broker's own rules and gives it a msgId. Done
 * before a message joins a batch: a batch is all-or-nothing at the broker,
 * so one bad message must be refused here rather than fail its neighbours.
 * The msgId is assigned now, before any attempt, so every retry of this
 * message carries the same id and the broker stores it once.
 */
export function prepareMessage(input: ProducerMessage): OutgoingMessage {
  if (typeof input !== "object" || input === null) {
    throw new EdgemqError("BAD_REQUEST", "a message must be an object with topic and body");
  }
  const { topic, queue, body, deliverAt, ...rest } = input;
  checkName(topic, "topic");
  if (
    queue !== undefined &&
    (!Number.isSafeInteger(queue) || queue < 0 || queue >= Limits.maxQueues)
  ) {
    throw new EdgemqError(
      "BAD_REQUEST",
      `queue must be an integer from 0 to ${Limits.maxQueues - 1}`,
    );
  }
  const message: MessageInput & { msgId: string } = {
    ...rest,
    body: "",
    msgId: rest.msgId ?? newMsgId(),
  };
  if (body instanceof Uint8Array) {
    message.body = toBase64(body);
    message.encoding = "base64";
  } else {
    message.body = body;
  }
  if (deliverAt !== undefined)
    message.deliverAt = deliverAt instanceof Date ? deliverAt.getTime() : deliverAt;
  // Drop undefined fields: the broker rejects unknown or ill-typed ones and
  // JSON would drop them anyway, but size and equality checks should agree.
  for (const k of Object.keys(message) as (keyof MessageInput)[]) {
    if (message[k] === undefined) delete message[k];
  }
  parseMessage(message, {
    now: Date.now(),
    newId: () => message.msgId,
    maxBytes: Limits.maxMessageBytesCeiling,
  });
  return { topic, queue, message, size: utf8Length(JSON.stringify(message)) + 1 };
}

/** Path segment of a name or id. */
export function seg(value: string | number): string {
  return encodeURIComponent(String(value));
}

/** A query string from defined values only, with its leading `?` (or empty). */
export function query(params: Record<string, string | number | undefined>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? `?${parts.join("&")}` : "";
}
