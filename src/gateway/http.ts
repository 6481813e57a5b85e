/** Request-reading helpers of the gateway: bounded bodies, strict UTF-8, query numbers. */
import type { Context, MiddlewareHandler } from "hono";
import { EdgemqError, badRequest } from "../protocol/errors.ts";
import { Limits } from "../protocol/limits.ts";
import { checkName, intParam } from "../protocol/validate.ts";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Nesting deeper than any valid request (a send is 4 levels deep) is refused before anything walks it. */
export const MAX_JSON_DEPTH = 32;

/**
 * Reads a JSON body of at most `maxBytes`. A declared Content-Length over the
 * bound is refused before reading; a body without one is read as a stream and
 * abandoned once over the bound; either way a body over it is refused. Invalid
 * UTF-8 is rejected, never replaced; nesting deeper than
 * {@link MAX_JSON_DEPTH} is rejected; an empty body reads as `undefined`
 * when `optional`.
 */
export async function readJson(
  c: Context,
  maxBytes: number = Limits.maxBatchBytes,
  optional = false,
): Promise<unknown> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > maxBytes) {
    throw new EdgemqError("BATCH_TOO_LARGE", `request body over ${maxBytes} bytes`);
  }
  // A body framed by a Content-Length within the bound is read in one call
  // (HTTP framing ends it there); one without is streamed and cut off at the bound.
  const buf = /^\d+$/.test(c.req.header("content-length") ?? "")
    ? new Uint8Array(await c.req.raw.arrayBuffer())
    : await readBounded(c.req.raw, maxBytes);
  if (buf.byteLength > maxBytes) {
    throw new EdgemqError("BATCH_TOO_LARGE", `request body over ${maxBytes} bytes`);
  }
  if (buf.byteLength === 0) {
    if (optional) return undefined;
    throw badRequest("a JSON body is required");
  }
  let text: string;
  try {
    text = strictUtf8.decode(buf);
  } catch {
    throw badRequest("body is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest("malformed JSON");
  }
  if (depthOver(value, MAX_JSON_DEPTH))
    throw badRequest(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  return value;
}

/** The request body, or BATCH_TOO_LARGE as soon as it passes `maxBytes`. */
async function readBounded(req: Request, maxBytes: number): Promise<Uint8Array> {
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      void reader.cancel().catch(() => {});
      throw new EdgemqError("BATCH_TOO_LARGE", `request body over ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const ch of chunks) {
    out.set(ch, at);
    at += ch.byteLength;
  }
  return out;
}

/**
 * True when `value` nests arrays/objects more than `max` deep. Iterative, so
 * a hostile million-level body cannot overflow the stack here (JSON.parse
 * copes; JSON.stringify and structured clone of such a value do not).
 */
export function depthOver(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (d >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === "object" && child !== null) stack.push([child, d + 1]);
    }
  }
  return false;
}

/** Bounds on request headers, checked before authentication reads any of them. */
export const MAX_HEADER_BYTES = 48 * 1024;
export const MAX_HEADERS = 100;

/**
 * Refuses requests whose headers are too many or too large (400): workerd
 * itself takes far more than any client of this API needs.
 */
export const limitHeaders: MiddlewareHandler = async (c, next) => {
  let count = 0;
  let bytes = 0;
  for (const [name, value] of c.req.raw.headers) {
    count++;
    bytes += name.length + value.length + 4;
  }
  if (count > MAX_HEADERS || bytes > MAX_HEADER_BYTES) {
    throw badRequest(`request headers over ${MAX_HEADERS} fields or ${MAX_HEADER_BYTES} bytes`);
  }
  return next();
};

/** A path parameter that names a topic or group. */
export function nameParam(c: Context, key: string): string {
  return checkName(c.req.param(key), key);
}

/** An integer query parameter within [min, max]. */
export function queryInt(
  c: Context,
  key: string,
  min: number,
  max: number,
  fallback: number,
): number;
export function queryInt(c: Context, key: string, min: number, max: number): number | undefined;
export function queryInt(
  c: Context,
  key: string,
  min: number,
  max: number,
  fallback?: number,
): number | undefined {
  return intParam(c.req.query(key), key, min, max, fallback as number);
}

/** An integer path parameter within [min, max]. */
export function pathInt(c: Context, key: string, min: number, max: number): number {
  const v = intParam(c.req.param(key), key, min, max);
  if (v === undefined) throw badRequest(`${key} is required`);
  return v;
}
