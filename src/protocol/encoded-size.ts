/**
 * Sizes of messages as they are encoded: in a SQLite row (which the platform
 * caps at {@link Limits.maxRowBytes} UTF-8 bytes) and in an answer (which
 * {@link Limits.maxAnswerBytes} bounds). Pure arithmetic over lengths already
 * known, so nothing is encoded twice to be measured: a UTF-8 body's byte
 * size was counted at validation, JSON escapes are ASCII, and only the short
 * fields are scanned for non-ASCII characters.
 */
import { EdgemqError } from "./errors.ts";
import { Limits } from "./limits.ts";
import type { NormalizedMessage } from "./validate.ts";

// Every character below U+0080 is one UTF-8 byte.
// oxlint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;
const encoder = new TextEncoder();

/** The UTF-8 bytes `s` takes beyond its length in UTF-16 units (0 for ASCII and for null). */
export function utf8Extra(s: string | null | undefined): number {
  if (!s || ASCII.test(s)) return 0;
  return encoder.encode(s).byteLength - s.length;
}

/** A message's fields as they are stored (a normalized message, or a log row's). */
export interface StoredFields {
  msgId: string;
  body: string;
  /** The body is base64 text (ASCII) rather than UTF-8. */
  base64: boolean;
  /** UTF-8 bytes of a UTF-8 body (the validated `size`); ignored for base64. */
  size: number;
  tag: string | null;
  /** Keys as stored: a JSON array's text, or null. */
  keys: string | null;
  /** Properties as stored: a JSON object's text, or null. */
  props: string | null;
  shardingKey: string | null;
}

/** A normalized message's fields as a shard stores them. */
export function fieldsOf(m: NormalizedMessage): StoredFields {
  return {
    msgId: m.msgId,
    body: m.body,
    base64: m.encoding === "base64",
    size: m.size,
    tag: m.tag,
    keys: m.keys.length ? JSON.stringify(m.keys) : null,
    props: m.properties ? JSON.stringify(m.properties) : null,
    shardingKey: m.shardingKey,
  };
}

/** Bytes of the body as stored: a UTF-8 body's size, base64 text's length. */
export function storedBodyBytes(f: Pick<StoredFields, "body" | "base64" | "size">): number {
  return f.base64 ? f.body.length : f.size;
}

/**
 * What the fields' non-ASCII characters add, in UTF-8, to any text that
 * holds them (a JSON row, an answer): add it to that text's length.
 */
export function fieldsExtra(f: StoredFields): number {
  return (
    (f.base64 ? 0 : f.size - f.body.length) +
    utf8Extra(f.msgId) +
    utf8Extra(f.tag) +
    utf8Extra(f.keys) +
    utf8Extra(f.props) +
    utf8Extra(f.shardingKey)
  );
}

/** Answer bytes counted per message besides its fields: names, numbers, topic, receipt. */
export const MESSAGE_OVERHEAD_BYTES = 512;

/**
 * The bytes a message takes in an answer, counted against
 * {@link Limits.maxAnswerBytes}: its stored fields in UTF-8 plus a fixed
 * overhead. JSON escapes are not counted (a body of quotes doubles on the
 * wire; one of control characters takes up to six times): the budget bounds
 * what the broker holds and hands over, well under the platform's limits
 * even then.
 */
export function answerBytes(f: StoredFields): number {
  return (
    storedBodyBytes(f) +
    f.msgId.length +
    (f.tag?.length ?? 0) +
    (f.keys?.length ?? 0) +
    (f.props?.length ?? 0) +
    (f.shardingKey?.length ?? 0) +
    utf8Extra(f.msgId) +
    utf8Extra(f.tag) +
    utf8Extra(f.keys) +
    utf8Extra(f.props) +
    utf8Extra(f.shardingKey) +
    MESSAGE_OVERHEAD_BYTES
  );
}

/**
 * The UTF-8 bytes of `json`, a JSON text holding exactly the string fields of
 * `f` (e.g. `JSON.stringify` of a message), without encoding it: its length
 * plus what the fields' non-ASCII characters add (escapes are ASCII).
 */
export function jsonBytes(json: string, f: StoredFields): number {
  return json.length + fieldsExtra(f);
}

/**
 * About the bytes a batch of messages adds to a shard's commit (body text
 * plus a fixed overhead each, without scanning the bodies): what bounds a
 * group commit.
 */
export function heldBytes(messages: readonly NormalizedMessage[]): number {
  let bytes = 0;
  for (const m of messages) bytes += Math.max(m.size, m.body.length) + MESSAGE_OVERHEAD_BYTES;
  return bytes;
}

/** Room kept below {@link Limits.maxRowBytes} for the row's other columns and SQLite's record header. */
export const ROW_SLACK_BYTES = 4096;

/**
 * Refuses, with MESSAGE_TOO_LARGE, a value of `bytes` UTF-8 bytes that would
 * make a row the platform refuses. `what` names the row in the message.
 */
export function assertRowFits(bytes: number, what: string, index?: number): void {
  if (bytes + ROW_SLACK_BYTES <= Limits.maxRowBytes) return;
  const where = index === undefined ? "" : `messages[${index}]: `;
  throw new EdgemqError(
    "MESSAGE_TOO_LARGE",
    `${where}stored as ${what} it takes ${bytes} bytes (JSON escapes included); a stored row holds at most ${Limits.maxRowBytes - ROW_SLACK_BYTES}`,
    index === undefined ? undefined : { index },
  );
}

/** How many bytes an answer may hold, as a caller asks a shard for one. */
export interface AnswerBytes {
  /** Encoded message bytes the answer may hold (see {@link answerBytes}). */
  max: number;
  /**
   * Whether the answer takes its first message whatever its size, so a
   * reader always progresses. False when the caller already holds messages
   * for the same answer (a fan-out's later shards).
   */
  atLeastOne: boolean;
}

/** A whole answer's budget: {@link Limits.maxAnswerBytes}, at least one message. */
export const WHOLE_ANSWER: AnswerBytes = { max: Limits.maxAnswerBytes, atLeastOne: true };

/** Counts the messages an answer takes against its {@link AnswerBytes}. */
export class ByteBudget {
  /** Bytes taken so far. */
  used = 0;
  /** Messages taken so far. */
  taken = 0;
  /** A message did not fit: the answer is cut by bytes, not by its count. */
  cut = false;

  constructor(private readonly limit: AnswerBytes = WHOLE_ANSWER) {}

  /** Takes a message of `bytes` if it fits (the first always does with `atLeastOne`). */
  take(bytes: number): boolean {
    if (this.cut) return false;
    if (this.used + bytes > this.limit.max && !(this.taken === 0 && this.limit.atLeastOne)) {
      this.cut = true;
      return false;
    }
    this.used += bytes;
    this.taken++;
    return true;
  }

  /** Bytes left (never below 0). */
  get left(): number {
    return Math.max(0, this.limit.max - this.used);
  }
}
