/** Request-reading helpers of the gateway: bounded bodies, strict UTF-8, query numbers. */
import type { Context } from "hono";
import { EdgemqError, badRequest } from "../protocol/errors.ts";
import { Limits } from "../protocol/limits.ts";
import { checkName, intParam } from "../protocol/validate.ts";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * Reads a JSON body of at most `maxBytes`. Invalid UTF-8 is rejected, never
 * replaced; an empty body reads as `undefined` when `optional`.
 */
export async function readJson(c: Context, maxBytes: number = Limits.maxBatchBytes, optional = false): Promise<unknown> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > maxBytes) {
    throw new EdgemqError("BATCH_TOO_LARGE", `request body over ${maxBytes} bytes`);
  }
  const buf = await c.req.arrayBuffer();
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
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest("malformed JSON");
  }
}

/** A path parameter that names a topic or group. */
export function nameParam(c: Context, key: string): string {
  return checkName(c.req.param(key), key);
}

/** An integer query parameter within [min, max]. */
export function queryInt(c: Context, key: string, min: number, max: number, fallback: number): number;
export function queryInt(c: Context, key: string, min: number, max: number): number | undefined;
export function queryInt(c: Context, key: string, min: number, max: number, fallback?: number): number | undefined {
  return intParam(c.req.query(key), key, min, max, fallback as number);
}

/** An integer path parameter within [min, max]. */
export function pathInt(c: Context, key: string, min: number, max: number): number {
  const v = intParam(c.req.param(key), key, min, max);
  if (v === undefined) throw badRequest(`${key} is required`);
  return v;
}
