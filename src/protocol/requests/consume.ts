/**
 * Receive (pop) and its settlements: ack, nack, invisibility. Receipts are
 * checked for their form here; whether one addresses a queue of the request's
 * topic and group is checked once the topic is known (the gateway's service).
 */
import { badRequest } from "../errors.ts";
import { type MessageFilter, compileFilter } from "../filter.ts";
import { type ReceiptParts, parseReceipt } from "../ids.ts";
import { Limits } from "../limits.ts";
import { intField, objectBody } from "./fields.ts";

/** A receive, checked; the filter is compiled here, once per call. */
export interface ReceiveRequest {
  max: number;
  invisibleMs: number;
  waitMs: number;
  filter: MessageFilter;
}

/** Reads a receive body (optional: `{}` takes every default). */
export function parseReceive(body: unknown): ReceiveRequest {
  const b = objectBody(body);
  const text = b.filter;
  if (text !== undefined && (typeof text !== "string" || text.length > Limits.maxFilterBytes)) {
    throw badRequest("filter must be a string");
  }
  const max = intField(b, "max", Limits.minMax, Limits.maxMax) ?? Limits.defaultMax;
  const invisibleMs =
    intField(b, "invisibleMs", Limits.minInvisibleMs, Limits.maxInvisibleMs) ??
    Limits.defaultInvisibleMs;
  const waitMs = intField(b, "waitMs", 0, Limits.maxWaitMs) ?? Limits.defaultWaitMs;
  return { max, invisibleMs, waitMs, filter: compileFilter(text) };
}

/** A receipt as given, with what it addresses. */
export interface Receipt extends ReceiptParts {
  receipt: string;
}

function receiptOf(value: unknown): Receipt {
  return { receipt: value as string, ...parseReceipt(value) };
}

function receiptList(value: unknown): Receipt[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > Limits.maxReceipts) {
    throw badRequest(`receipts must be an array of 1..${Limits.maxReceipts} receipts`);
  }
  return value.map(receiptOf);
}

export interface AckRequest {
  receipts: Receipt[];
}

/** Reads `{"receipts": [...]}` of an ack. */
export function parseAck(body: unknown): AckRequest {
  return { receipts: receiptList(objectBody(body).receipts) };
}

export interface NackRequest {
  receipts: Receipt[];
  /** Retry after this long instead of the group's delay for the message's reconsumeTimes. */
  delayMs?: number;
}

/** Reads `{"receipts": [...], "delayMs"?}` of a nack. */
export function parseNack(body: unknown): NackRequest {
  const b = objectBody(body);
  const delayMs = intField(b, "delayMs", 0, Limits.maxDelayMs);
  return { receipts: receiptList(b.receipts), ...(delayMs !== undefined && { delayMs }) };
}

export interface InvisibilityRequest {
  receipt: Receipt;
  invisibleMs: number;
}

/** Reads `{"receipt", "invisibleMs"}` of a change of invisible time. */
export function parseInvisibility(body: unknown): InvisibilityRequest {
  const b = objectBody(body);
  const invisibleMs = intField(b, "invisibleMs", Limits.minInvisibleMs, Limits.maxInvisibleMs);
  if (invisibleMs === undefined) throw badRequest("invisibleMs is required");
  return { receipt: receiptOf(b.receipt), invisibleMs };
}
