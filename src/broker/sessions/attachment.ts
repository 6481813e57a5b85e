/**
 * A session's state, kept in its socket's attachment so it survives
 * hibernation: who it is, what it may do, and its subscription (mode,
 * filter, credit, pull position). Nothing else about a session lives in the
 * shard's memory between events, so an idle subscribed session costs no
 * timer and no wake-up. An attachment holds at most 2 KiB: filters longer
 * than `SessionLimits.maxFilterChars` are refused by the parser.
 */
import type { GroupConfig } from "../../protocol/types.ts";
import type { SessionGrant } from "../../gateway/auth.ts";

/** The URL the gateway hands a session's socket to a shard on (the host is ignored by a stub's fetch). */
export const SESSION_URL = "https://shard/session";
/** Its path, by which the shard tells a session's handoff from a watcher. */
export const SESSION_PATH = "/session";

/** Header carrying the gateway's {@link SessionHandoff} (only the gateway can reach a shard). */
export const HANDOFF_HEADER = "x-edgemq-session";

/** What the gateway tells the shard about a session it hands over. */
export interface SessionHandoff {
  /** The group named in the session URL, or null. */
  group: string | null;
  /** What the token may do; null when the client authenticates with its first frame. */
  grant: SessionGrant | null;
  /** The group's config, when a group is named and the grant is known. */
  groupConfig: GroupConfig | null;
}

export interface ReceiveSubscription {
  mode: "receive";
  filter: string | null;
  invisibleMs: number;
  /** Messages the shard may still push before the client credits more. */
  credit: number;
}

export interface PullSubscription {
  mode: "pull";
  filter: string | null;
  /** Where the next push reads from. */
  offset: number;
  credit: number;
}

export type Subscription = ReceiveSubscription | PullSubscription;

export interface SessionAttachment {
  kind: "session";
  /** Random id, named in `ready` (for logs). */
  id: string;
  group: string | null;
  /** null until the auth frame (when the upgrade carried no token). */
  grant: SessionGrant | null;
  /** When the shard accepted it (Unix ms): a session still unauthenticated long after is closed. */
  openedAt: number;
  subscription: Subscription | null;
}

export function isSessionAttachment(v: unknown): v is SessionAttachment {
  return typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "session";
}

/** Reads the gateway's handoff; null when the request carries none (not from the gateway). */
export function readHandoff(request: Request): SessionHandoff | null {
  const raw = request.headers.get(HANDOFF_HEADER);
  if (!raw) return null;
  try {
    const h = JSON.parse(raw) as SessionHandoff;
    return typeof h === "object" && h !== null ? h : null;
  } catch {
    return null;
  }
}
