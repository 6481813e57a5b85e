/**
 * Field checks the request parsers are built from: names, bounded integers
 * (in JSON and in query strings), strings by UTF-8 length. Each failure is an
 * {@link EdgemqError} naming the field, with the contract's code.
 */
import { EdgemqError, badRequest } from "../errors.ts";
import { Limits } from "../limits.ts";

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

/** Checks a topic or group name against the contract's pattern (INVALID_NAME). */
export function checkName(name: string | undefined, what = "name"): string {
  if (name === undefined || !Limits.namePattern.test(name)) {
    throw new EdgemqError("INVALID_NAME", `${what} must match ${Limits.namePattern.source}`);
  }
  return name;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A JSON body that must be an object; an absent (optional) body reads as `{}`. */
export function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (!isObject(body)) throw badRequest("body must be an object");
  return body;
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

/** Reads an optional string field: non-empty unless `allowEmpty`, well-formed, at most `maxBytes` of UTF-8. */
export function stringField(
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

/** Parses an integer path or query parameter within [min, max]; absent gives `fallback`. */
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

/**
 * A query string as decoded by the router: one value per key, or several
 * when the key repeats (hono's `validator("query")` gives this shape).
 */
export type QueryInput = Record<string, string | string[] | undefined>;

/** A query parameter's value; of a repeated key, the first (as `URLSearchParams.get`). */
export function queryValue(query: QueryInput, key: string): string | undefined {
  const v = query[key];
  return Array.isArray(v) ? v[0] : v;
}

/** The queue index of a path (`…/queues/{q}/…`): 0 up to the contract's queue ceiling. */
export function parseQueueParam(value: string | undefined): number {
  const q = intParam(value, "queue", 0, Limits.maxQueues - 1);
  if (q === undefined) throw badRequest("queue is required");
  return q;
}
