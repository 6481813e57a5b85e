/**
 * The session protocol (docs/protocol.md): one WebSocket per queue, from the
 * SDK straight to the queue's shard, carrying JSON text frames. This module
 * holds what both ends must agree on: the version, the subprotocol names,
 * the limits, the close codes, the frame shapes, and the parser the shard
 * runs on every frame a client sends (the SDK runs the same checks before a
 * frame leaves). No `cloudflare:*` imports: shared with client/.
 */
import { EdgemqError, type ErrorCode, badRequest } from "./errors.ts";
import { parseReceipt } from "./ids.ts";
import { Limits } from "./limits.ts";
import type { AckResult, Message, SendResult } from "./types.ts";
import { isObject, utf8Length } from "./requests/fields.ts";

/** The protocol version this build speaks. */
export const SESSION_VERSION = 1;

/** The subprotocol a client offers and the server selects (`Sec-WebSocket-Protocol`). */
export const SESSION_PROTOCOL = "edgemq.v1";

/**
 * Prefix of the subprotocol entry that carries the bearer token, as
 * `edgemq.bearer.<base64url(token)>`: browsers cannot set headers on a
 * WebSocket, and base64url keeps any token within the header's token syntax.
 */
export const SESSION_TOKEN_PREFIX = "edgemq.bearer.";

/** Limits of a session, announced in the `ready` frame. */
export const SessionLimits = {
  /**
   * Bytes of one frame a client sends: the runtime's limit on a received
   * WebSocket message (1 MiB on Cloudflare; larger ones close the socket
   * with 1009). The SDK sends a message that cannot fit over HTTP.
   */
  maxClientFrameBytes: 1024 * 1024,
  /** Bytes of one frame the shard pushes (messages are split over frames to stay under it). */
  maxPushFrameBytes: 8 * 1024 * 1024,
  /** Messages in one send frame, and receipts in one ack/nack/invisibility frame. */
  maxFrameItems: 1000,
  /** Send frames a session may have unanswered; one more is refused with RATE_LIMITED. */
  maxInflightSends: 16,
  /** Largest credit window of a subscription (messages pushed and not yet credited back). */
  maxCredit: 10_000,
  /** Filters of a subscription up to this many characters (they live in the socket's attachment). */
  maxFilterChars: 1500,
  /** Bad frames in a row before the session is closed for a protocol violation. */
  maxBadFrames: 32,
  /** Sessions one shard holds (the platform allows 32,768 hibernatable sockets per object). */
  maxSessionsPerShard: 16_384,
  /** Sessions one token subject holds on one shard. */
  maxSessionsPerSubject: 1024,
  /** Sessions waiting for their auth frame on one shard (the upgrade carried no token). */
  maxPendingAuth: 256,
  /** How long a session may wait for its auth frame before the next upgrade closes it (4401). */
  authTimeoutMs: 10_000,
} as const;

/**
 * Close codes of a session. 1000–1015 are the WebSocket standard's; the
 * 4xxx codes are edgemq's (4000 + the HTTP status of the contract error where
 * one applies), each with what a client should do.
 */
export const SessionClose = {
  /** Closed on purpose by either side. */
  NORMAL: 1000,
  /** The shard is going away (the topic was reconfigured or the object restarts): reconnect. */
  GOING_AWAY: 1001,
  /** A frame over the runtime's limit (sent by the runtime itself). */
  TOO_BIG: 1009,
  /** An unexpected failure in the shard: reconnect with backoff. */
  INTERNAL: 1011,
  /** Too many bad frames in a row, or a frame that breaks the protocol's state rules: a client bug. */
  PROTOCOL_VIOLATION: 4000,
  /** The session's token expired: reconnect with a fresh token. */
  TOKEN_EXPIRED: 4001,
  /** The upgrade's parameters are wrong (a queue outside the topic, an unknown version): do not retry as is. */
  BAD_REQUEST: 4400,
  /** No valid token (none given, or the auth frame's token is invalid): reconnect with a valid token. */
  UNAUTHORIZED: 4401,
  /** The token may not use this topic or group. */
  FORBIDDEN: 4403,
  /** The topic (or the queue) does not exist any more: refresh the route. */
  NOT_FOUND: 4404,
  /** Too many sessions on this shard or for this token: reconnect later. */
  TOO_MANY_SESSIONS: 4429,
  /** The broker is not configured or unavailable: reconnect with backoff. */
  UNAVAILABLE: 4503,
} as const;

/** The close code that tells a client about a contract error at the upgrade. */
export function closeCodeFor(code: ErrorCode): number {
  switch (code) {
    case "UNAUTHORIZED":
      return SessionClose.UNAUTHORIZED;
    case "FORBIDDEN":
      return SessionClose.FORBIDDEN;
    case "TOPIC_NOT_FOUND":
    case "NOT_FOUND":
    case "GROUP_NOT_FOUND":
      return SessionClose.NOT_FOUND;
    case "RATE_LIMITED":
      return SessionClose.TOO_MANY_SESSIONS;
    case "NOT_CONFIGURED":
    case "UNAVAILABLE":
    case "INTERNAL":
      return SessionClose.UNAVAILABLE;
    default:
      return SessionClose.BAD_REQUEST;
  }
}

/** The session path of a queue (a GET with `Upgrade: websocket`). */
export function sessionPath(topic: string, queue: number, group?: string): string {
  const base = `/v1/topics/${encodeURIComponent(topic)}/queues/${queue}/session`;
  return group === undefined ? base : `${base}?group=${encodeURIComponent(group)}`;
}

/** The subprotocol entry carrying `token`. */
export function tokenProtocol(token: string): string {
  const bytes = new TextEncoder().encode(token);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return (
    SESSION_TOKEN_PREFIX + btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
  );
}

/** The token in a `Sec-WebSocket-Protocol` header's entries, or undefined; a malformed one is UNAUTHORIZED. */
export function tokenFromProtocols(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const raw of header.split(",")) {
    const p = raw.trim();
    if (!p.startsWith(SESSION_TOKEN_PREFIX)) continue;
    const b64 = p.slice(SESSION_TOKEN_PREFIX.length);
    if (!/^[A-Za-z0-9_-]+$/.test(b64))
      throw new EdgemqError("UNAUTHORIZED", "malformed token protocol");
    try {
      const binary = atob(b64.replace(/-/g, "+").replace(/_/g, "/"));
      const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      throw new EdgemqError("UNAUTHORIZED", "malformed token protocol");
    }
  }
  return undefined;
}

/** Whether a `Sec-WebSocket-Protocol` header offers this build's protocol. */
export function offersSessionProtocol(header: string | null): boolean {
  return (header ?? "").split(",").some((p) => p.trim() === SESSION_PROTOCOL);
}

// ---- frames a client sends ---------------------------------------------------

/** A subscription's delivery: receive claims for the group, pull reads by offset. */
export type SubscribeMode = "receive" | "pull";

export type ClientFrame =
  | { type: "auth"; token: string }
  | { type: "send"; id: number; messages: unknown[]; atomic: boolean }
  | {
      type: "subscribe";
      id: number;
      mode: "receive";
      filter: string | null;
      invisibleMs: number;
      credit: number;
    }
  | {
      type: "subscribe";
      id: number;
      mode: "pull";
      filter: string | null;
      offset: number | null;
      credit: number;
    }
  | { type: "unsubscribe"; id: number }
  | { type: "credit"; n: number }
  | { type: "ack"; id: number | null; receipts: string[]; credit: number }
  | { type: "nack"; id: number | null; receipts: string[]; delayMs: number | null; credit: number }
  | { type: "invisibility"; id: number; receipts: string[]; invisibleMs: number }
  | { type: "commit"; id: number | null; offset: number };

/** Frame types a client may send. */
export const ClientFrameTypes = [
  "auth",
  "send",
  "subscribe",
  "unsubscribe",
  "credit",
  "ack",
  "nack",
  "invisibility",
  "commit",
] as const;

/** The keep-alive frame: answered `{"type":"pong"}` by the runtime without waking the shard. */
export const PING_FRAME = '{"type":"ping"}';
export const PONG_FRAME = '{"type":"pong"}';

/** Nesting deeper than a valid frame (a send is 5 levels deep) is refused before anything walks it. */
const MAX_FRAME_DEPTH = 16;

const FRAME_KEYS: Record<ClientFrame["type"], ReadonlySet<string>> = {
  auth: new Set(["type", "token"]),
  send: new Set(["type", "id", "messages", "atomic"]),
  subscribe: new Set(["type", "id", "mode", "filter", "invisibleMs", "offset", "credit"]),
  unsubscribe: new Set(["type", "id"]),
  credit: new Set(["type", "n"]),
  ack: new Set(["type", "id", "receipts", "credit"]),
  nack: new Set(["type", "id", "receipts", "delayMs", "credit"]),
  invisibility: new Set(["type", "id", "receipts", "invisibleMs"]),
  commit: new Set(["type", "id", "offset"]),
};

/** True when `value` nests arrays/objects more than `max` deep (iterative: no stack to overflow). */
function deeperThan(value: unknown, max: number): boolean {
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

/** The frame id a bad frame carried, if one can be read, so its error frame can name it. */
function readableId(v: unknown): number | undefined {
  if (!isObject(v)) return undefined;
  const id = v.id;
  return typeof id === "number" && Number.isSafeInteger(id) && id >= 0 ? id : undefined;
}

/** An error about a frame, naming its id (when it had one) in `details.id`. */
function frameError(raw: unknown, e: EdgemqError): EdgemqError {
  const id = readableId(raw);
  return id === undefined ? e : new EdgemqError(e.code, e.message, { ...e.details, id });
}

function int(
  obj: Record<string, unknown>,
  key: string,
  min: number,
  max: number,
  fallback?: number,
): number {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw badRequest(`${key} is required`);
    return fallback;
  }
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw badRequest(`${key} must be an integer from ${min} to ${max}`);
  }
  return v;
}

function frameId(obj: Record<string, unknown>, optional: true): number | null;
function frameId(obj: Record<string, unknown>, optional?: false): number;
function frameId(obj: Record<string, unknown>, optional = false): number | null {
  if (optional && (obj.id === undefined || obj.id === null)) return null;
  return int(obj, "id", 0, Number.MAX_SAFE_INTEGER);
}

function receipts(obj: Record<string, unknown>): string[] {
  const r = obj.receipts;
  if (!Array.isArray(r) || r.length === 0 || r.length > SessionLimits.maxFrameItems) {
    throw badRequest(`receipts must be an array of 1..${SessionLimits.maxFrameItems} receipts`);
  }
  for (const x of r)
    if (typeof x !== "string" || x.length > 512) throw badRequest("malformed receipt");
  return r as string[];
}

function filterField(obj: Record<string, unknown>): string | null {
  const f = obj.filter;
  if (f === undefined || f === null || f === "" || f === "*") return null;
  if (typeof f !== "string") throw badRequest("filter must be a string");
  if (f.length > SessionLimits.maxFilterChars) {
    throw badRequest(
      `a session's filter is at most ${SessionLimits.maxFilterChars} characters (longer ones: use HTTP)`,
    );
  }
  if (!f.isWellFormed()) throw badRequest("filter is not valid UTF-8");
  return f;
}

const credit = (obj: Record<string, unknown>, fallback: number) =>
  int(obj, "credit", 0, SessionLimits.maxCredit, fallback);

/**
 * Parses and checks one frame a client sent. Messages of a send are checked
 * later, one by one, against the topic's limits (each gets its own result).
 * Throws an {@link EdgemqError} (`BAD_REQUEST`, or `BATCH_TOO_LARGE` for a
 * frame over the size limit) whose `details.id` names the frame when its id
 * could be read.
 */
export function parseClientFrame(data: string | ArrayBuffer | ArrayBufferView): ClientFrame {
  if (typeof data !== "string") throw badRequest("frames are JSON text; binary frames are refused");
  if (
    data.length > SessionLimits.maxClientFrameBytes ||
    utf8Length(data) > SessionLimits.maxClientFrameBytes
  ) {
    throw new EdgemqError(
      "BATCH_TOO_LARGE",
      `a frame is at most ${SessionLimits.maxClientFrameBytes} bytes`,
    );
  }
  if (!data.isWellFormed()) throw badRequest("frame is not valid UTF-8");
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    throw badRequest("malformed JSON");
  }
  if (!isObject(raw)) throw badRequest('a frame is a JSON object with a "type"');
  if (deeperThan(raw, MAX_FRAME_DEPTH)) {
    throw frameError(raw, badRequest(`frame nested deeper than ${MAX_FRAME_DEPTH} levels`));
  }
  try {
    return checkFrame(raw);
  } catch (e) {
    if (e instanceof EdgemqError) throw frameError(raw, e);
    throw e;
  }
}

function checkFrame(raw: Record<string, unknown>): ClientFrame {
  const type = raw.type;
  if (typeof type !== "string" || !(ClientFrameTypes as readonly string[]).includes(type)) {
    throw badRequest(
      `unknown frame type ${JSON.stringify(String(type).slice(0, 32))}; one of ${ClientFrameTypes.join(", ")}`,
    );
  }
  const t = type as ClientFrame["type"];
  for (const k of Object.keys(raw)) {
    if (!FRAME_KEYS[t].has(k)) throw badRequest(`unknown field ${k.slice(0, 64)} in a ${t} frame`);
  }
  switch (t) {
    case "auth": {
      if (typeof raw.token !== "string" || raw.token.length === 0 || raw.token.length > 24 * 1024) {
        throw badRequest("token must be a non-empty string");
      }
      return { type: "auth", token: raw.token };
    }
    case "send": {
      const id = frameId(raw);
      const m = raw.messages;
      if (!Array.isArray(m) || m.length === 0)
        throw badRequest("messages must be a non-empty array");
      if (m.length > SessionLimits.maxFrameItems) {
        throw new EdgemqError(
          "BATCH_TOO_LARGE",
          `at most ${SessionLimits.maxFrameItems} messages per frame; got ${m.length}`,
        );
      }
      if (raw.atomic !== undefined && typeof raw.atomic !== "boolean") {
        throw badRequest("atomic must be a boolean");
      }
      return { type: "send", id, messages: m, atomic: raw.atomic === true };
    }
    case "subscribe": {
      const id = frameId(raw);
      const filter = filterField(raw);
      if (raw.mode === "receive") {
        if (raw.offset !== undefined) throw badRequest("offset is for pull mode");
        return {
          type: "subscribe",
          id,
          mode: "receive",
          filter,
          invisibleMs: int(
            raw,
            "invisibleMs",
            Limits.minInvisibleMs,
            Limits.maxInvisibleMs,
            Limits.defaultInvisibleMs,
          ),
          credit: credit(raw, Limits.defaultMax),
        };
      }
      if (raw.mode === "pull") {
        if (raw.invisibleMs !== undefined) throw badRequest("invisibleMs is for receive mode");
        const offset =
          raw.offset === undefined || raw.offset === null
            ? null
            : int(raw, "offset", 0, Number.MAX_SAFE_INTEGER);
        return {
          type: "subscribe",
          id,
          mode: "pull",
          filter,
          offset,
          credit: credit(raw, Limits.defaultMax),
        };
      }
      throw badRequest('mode must be "receive" or "pull"');
    }
    case "unsubscribe":
      return { type: "unsubscribe", id: frameId(raw) };
    case "credit":
      return {
        type: "credit",
        n: int(raw, "n", -SessionLimits.maxCredit, SessionLimits.maxCredit),
      };
    case "ack":
      return {
        type: "ack",
        id: frameId(raw, true),
        receipts: receipts(raw),
        credit: credit(raw, 0),
      };
    case "nack": {
      const delay =
        raw.delayMs === undefined || raw.delayMs === null
          ? null
          : int(raw, "delayMs", 0, Limits.maxDelayMs);
      return {
        type: "nack",
        id: frameId(raw, true),
        receipts: receipts(raw),
        delayMs: delay,
        credit: credit(raw, 0),
      };
    }
    case "invisibility":
      return {
        type: "invisibility",
        id: frameId(raw),
        receipts: receipts(raw),
        invisibleMs: int(raw, "invisibleMs", Limits.minInvisibleMs, Limits.maxInvisibleMs),
      };
    case "commit":
      return {
        type: "commit",
        id: frameId(raw, true),
        offset: int(raw, "offset", 0, Number.MAX_SAFE_INTEGER),
      };
  }
}

/**
 * Checks that a receipt belongs to this session's topic, group and queue
 * (an ack of a foreign receipt stores nothing) and returns its parts.
 */
export function sessionReceipt(
  receipt: string,
  topic: string,
  group: string,
  queue: number,
): { offset: number; handle: string } {
  const p = parseReceipt(receipt);
  if (p.topic !== topic || p.group !== group || p.queue !== queue) {
    throw badRequest("receipt belongs to another topic, group or queue than this session's");
  }
  return { offset: p.offset, handle: p.handle };
}

// ---- frames the shard sends ----------------------------------------------------

/** Limits announced in `ready`. */
export interface ReadyLimits {
  maxClientFrameBytes: number;
  maxPushFrameBytes: number;
  maxFrameItems: number;
  maxInflightSends: number;
  maxCredit: number;
  maxFilterChars: number;
}

/** A message's outcome in a `sent` frame: the broker's result, or why it was refused. */
export type SessionSendResult =
  | SendResult
  | { msgId?: string; error: { code: string; message: string } };

export type ServerFrame =
  | {
      type: "ready";
      v: number;
      session: string;
      topic: string;
      queue: number;
      queues: number;
      group: string | null;
      maxOffset: number;
      /** Unix ms when the token expires (the session closes with 4001 then), or null. */
      expiresAt: number | null;
      publish: boolean;
      consume: boolean;
      limits: ReadyLimits;
    }
  | { type: "sent"; id: number; results: SessionSendResult[] }
  | { type: "subscribed"; id: number; mode: SubscribeMode; offset: number | null }
  | { type: "unsubscribed"; id: number }
  | {
      type: "messages";
      messages: Message[];
      /** Pull mode: where the subscription reads next. */
      nextOffset?: number;
      /** Pull mode: messages removed by retention that were skipped. */
      skipped?: number;
    }
  | { type: "acked" | "nacked"; id: number; results: AckResult[] }
  | { type: "invisibility"; id: number; results: AckResult[] }
  | { type: "committed"; id: number; offset: number }
  /** The topic's queue count changed (it grew): clients open sessions to the new queues. */
  | { type: "route"; topic: string; queues: number }
  | {
      type: "error";
      id: number | null;
      error: { code: string; message: string; [k: string]: unknown };
    }
  | { type: "pong" };

/** Server frame types a client understands. */
const ServerFrameTypes = new Set([
  "ready",
  "sent",
  "subscribed",
  "unsubscribed",
  "messages",
  "acked",
  "nacked",
  "invisibility",
  "committed",
  "route",
  "error",
  "pong",
]);

/** The error frame for `e` (about the frame `id`, when known). */
export function errorFrame(e: EdgemqError, id: number | null = null): string {
  const frameIdOf = typeof e.details?.id === "number" ? (e.details.id as number) : id;
  const { id: _id, ...details } = e.details ?? {};
  return JSON.stringify({
    type: "error",
    id: frameIdOf,
    error: { ...details, code: e.code, message: e.message },
  });
}

/** Parses a frame the shard sent (the SDK side); null when it is not one this build knows. */
export function parseServerFrame(data: unknown): ServerFrame | null {
  if (typeof data !== "string") return null;
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isObject(v) || typeof v.type !== "string" || !ServerFrameTypes.has(v.type)) return null;
  return v as ServerFrame;
}
