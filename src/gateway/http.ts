/** Request-reading helpers of the gateway: bounded bodies, strict UTF-8, and the route inputs built on them. */
import type { Context, MiddlewareHandler } from "hono";
import { validator } from "hono/validator";
import { EdgemqError, badRequest } from "../protocol/errors.ts";
import { Limits } from "../protocol/limits.ts";
import { type QueryInput, checkName, parseQueueParam } from "../protocol/requests/fields.ts";
import { type GatewayEnv, requireAdmin } from "./auth.ts";

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

// ---- route inputs ----------------------------------------------------------
//
// A route declares its inputs as middleware, in the order they are checked:
// the path (names first, then the caller's permission for them, then the rest
// of the path), the query, the body. Each runs a parser of src/protocol/requests/
// and hands the handler a typed value (`c.req.valid("param" | "query" | "json")`).
// Checking the permission right after the names means a caller without it
// learns nothing about the rest of the request, and no body is read for it.

/** Authorizes the caller for the names a path gave; throws FORBIDDEN. */
export type Authorize<N> = (c: Context<GatewayEnv>, names: N) => void;

type Names<K extends string> = { [k in K]: string };

function namesOf<K extends string>(params: Record<string, string>, keys: readonly K[]): Names<K> {
  const out = {} as Names<K>;
  for (const k of keys) out[k] = checkName(params[k], k);
  return out;
}

/** A path of names (topics, groups, producer groups), checked in order, then `authorize`d. */
export function names<K extends string>(keys: readonly K[], authorize?: Authorize<Names<K>>) {
  return validator("param", (params: Record<string, string>, c) => {
    const out = namesOf(params, keys);
    authorize?.(c as Context<GatewayEnv>, out);
    return out;
  });
}

/** A path of names and a queue index (`…/queues/{queue}/…`); the queue is read once the caller is authorized. */
export function namesAndQueue<K extends string>(
  keys: readonly K[],
  authorize?: Authorize<Names<K>>,
) {
  return validator("param", (params: Record<string, string>, c) => {
    const out = namesOf(params, keys);
    authorize?.(c as Context<GatewayEnv>, out);
    return { ...out, queue: parseQueueParam(params.queue) };
  });
}

/** A query string, read by `parse`. */
export function query<T>(parse: (query: QueryInput) => T) {
  return validator("query", (q) => parse(q));
}

/**
 * A JSON body, read by {@link readJson} within `maxBytes` and then by
 * `parse`; the handler gets the result as `c.req.valid("json")`, as from
 * hono's validator. Not `validator("json")` itself: that reads the body on
 * its own first (unbounded, lenient UTF-8, its own error shape) whenever the
 * Content-Type is JSON, before any of the contract's bounds could apply.
 */
export function jsonBody<T>(
  parse: (body: unknown, c: Context<GatewayEnv>) => T,
  opts: { maxBytes?: number; optional?: boolean } = {},
): MiddlewareHandler<GatewayEnv, string, { in: { json: unknown }; out: { json: T } }> {
  return async (c, next) => {
    const value = parse(await readJson(c, opts.maxBytes, opts.optional), c);
    c.req.addValidatedData("json", value as object);
    await next();
  };
}

/** Lets only the admin token through (for routes where that is checked before the path). */
export const adminOnly: MiddlewareHandler<GatewayEnv> = async (c, next) => {
  requireAdmin(c);
  await next();
};
