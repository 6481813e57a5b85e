/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) on messages: a
 * message may carry `traceparent` and `tracestate` (as fields on send, or
 * from the send request's `traceparent` header), stored and delivered
 * unchanged to every consumer and push endpoint. Only the shape is checked
 * here: edgemq neither starts nor continues traces itself.
 */
import { badRequest } from "./errors.ts";

/** Bytes of a `tracestate` (the spec: 32 list members, each at most 256 characters; 512 is what it asks every system to pass on). */
export const MAX_TRACESTATE_BYTES = 512;

/** Members of a `tracestate` list (the spec's limit). */
const MAX_TRACESTATE_MEMBERS = 32;

/**
 * version "-" trace-id "-" parent-id "-" flags, lower-case hex. Version 00 is
 * exactly that; a later version may add fields after a further "-" (the
 * spec's forward compatibility); version ff is invalid.
 */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\s]*)?$/;

/** Whether `value` is a valid `traceparent` header value. */
export function isTraceparent(value: string): boolean {
  const m = TRACEPARENT.exec(value);
  if (!m) return false;
  const [, version, traceId, parentId, , rest] = m;
  if (version === "ff") return false;
  if (version === "00" && rest !== undefined) return false;
  if (/^0+$/.test(traceId!) || /^0+$/.test(parentId!)) return false;
  return value.length <= 512;
}

/** Whether `value` is an acceptable `tracestate`: printable ASCII list members within the spec's bounds. */
export function isTracestate(value: string): boolean {
  if (value.length > MAX_TRACESTATE_BYTES) return false;
  if (!/^[\x20-\x7e]*$/.test(value)) return false;
  const members = value.split(",").filter((m) => m.trim() !== "");
  if (members.length > MAX_TRACESTATE_MEMBERS) return false;
  // key "=" value, the key lower-case (tenant@system allowed), the value without "," or "=".
  return members.every((m) =>
    /^[a-z0-9][_0-9a-z\-*/@]{0,255}=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/.test(
      m.trim(),
    ),
  );
}

/** Trace context of one message, as stored. */
export interface TraceContext {
  traceparent: string | null;
  tracestate: string | null;
}

/**
 * Reads `traceparent` / `tracestate` from a message (or a request's headers,
 * `where` naming the place in errors): BAD_REQUEST naming the field when one
 * is malformed, and for a message's `tracestate` without a `traceparent`.
 */
export function parseTraceContext(
  traceparent: unknown,
  tracestate: unknown,
  where: "field" | "header" = "field",
): TraceContext {
  const name = (f: string) => (where === "header" ? `${f} header` : f);
  let parent: string | null = null;
  let state: string | null = null;
  if (traceparent !== undefined && traceparent !== null) {
    if (typeof traceparent !== "string" || !isTraceparent(traceparent.trim())) {
      throw badRequest(
        `${name("traceparent")} is malformed: expected W3C version-traceid-parentid-flags (00-<32 hex>-<16 hex>-<2 hex>)`,
      );
    }
    parent = traceparent.trim();
  }
  if (tracestate !== undefined && tracestate !== null) {
    if (typeof tracestate !== "string" || !isTracestate(tracestate.trim())) {
      throw badRequest(
        `${name("tracestate")} is malformed: expected up to ${MAX_TRACESTATE_MEMBERS} key=value members, at most ${MAX_TRACESTATE_BYTES} printable ASCII characters`,
      );
    }
    // Alone it means nothing: a header is then ignored (as the W3C spec has
    // receivers do), a message field refused.
    if (parent === null) {
      if (where === "header") return { traceparent: null, tracestate: null };
      throw badRequest(`${name("tracestate")} needs a traceparent`);
    }
    state = tracestate.trim() || null;
  }
  return { traceparent: parent, tracestate: state };
}
