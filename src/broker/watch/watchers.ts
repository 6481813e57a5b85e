/**
 * The shard's side of hibernation-friendly long-polls (the gateway's side is
 * src/gateway/shard-watch.ts). A watcher is a WebSocket from the gateway that
 * the shard accepts with the hibernation API (`ctx.acceptWebSocket`): the
 * runtime keeps it open while the shard sleeps, and the shard only runs when
 * something happens. Each watcher says what it waits for (a pull from an
 * offset, or a group's receive, with an optional filter), kept in the
 * socket's attachment so it survives hibernation. On every change that could
 * end a wait, the shard runs the same cheap check a held wait would run and
 * sends a short notice to the watchers it concerns; it never reads from them.
 */

/** What changed, when the shard knows: lets a check look at less than everything. */
export interface WakeHint {
  /** Messages were appended to the log from this offset on (and nothing else changed). */
  appendedFrom?: number;
}

/** Closes a socket that may already be closing. */
export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}

/** The URL the gateway opens a watcher on (the host is ignored by a stub's fetch). */
export const WATCH_URL = "https://shard/watch";

/**
 * What a watcher waits for. `filter` null means every message; `anyChange`
 * marks a filter too long to keep in the attachment (2 KiB): such a watcher
 * hears of every change and its gateway looks for itself.
 */
export type WatchSpec =
  | { kind: "pull"; offset: number; filter: string | null; anyChange?: true }
  | { kind: "receive"; group: string; filter: string | null; anyChange?: true };

/** Filters up to this many characters travel in the attachment. */
const MAX_ATTACHED_FILTER = 1500;

/** The watch URL for a spec. */
export function watchUrl(spec: WatchSpec): string {
  const q = new URLSearchParams({ kind: spec.kind });
  if (spec.kind === "pull") q.set("offset", String(spec.offset));
  else q.set("group", spec.group);
  if (spec.filter !== null) q.set("filter", spec.filter);
  return `${WATCH_URL}?${q}`;
}

/** The spec a watch URL asks for, or null when it is malformed. */
export function parseWatchSpec(url: string): WatchSpec | null {
  const q = new URL(url).searchParams;
  const raw = q.get("filter");
  const filter = raw === null || raw === "" || raw === "*" ? null : raw;
  const wide = filter !== null && filter.length > MAX_ATTACHED_FILTER;
  const kept = wide ? null : filter;
  if (q.get("kind") === "pull") {
    const offset = Number(q.get("offset"));
    if (!Number.isSafeInteger(offset) || offset < 0) return null;
    return wide
      ? { kind: "pull", offset, filter: null, anyChange: true }
      : { kind: "pull", offset, filter: kept };
  }
  if (q.get("kind") === "receive") {
    const group = q.get("group");
    if (!group) return null;
    return wide
      ? { kind: "receive", group, filter: null, anyChange: true }
      : { kind: "receive", group, filter: kept };
  }
  return null;
}

/** The notice: the shard's next offset to write. */
export function noticeText(maxOffset: number): string {
  return `{"maxOffset":${maxOffset}}`;
}

/** maxOffset of a notice, or NaN when it is not one. */
export function parseNotice(data: unknown): number {
  try {
    const n = (JSON.parse(String(data)) as { maxOffset?: unknown }).maxOffset;
    return typeof n === "number" ? n : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * Answers a watcher's upgrade: 101 with the socket accepted for hibernation
 * (426 or 400 otherwise). The watcher is told at once when its wait is
 * already over, so the gateway needs no second look after opening it: what
 * was there before shows now, what comes after sends a notice.
 */
export function acceptWatcher(
  ctx: DurableObjectState,
  request: Request,
  maxOffset: number,
  concerns: (spec: WatchSpec) => boolean,
): Response {
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return new Response("this object only accepts watcher WebSockets", { status: 426 });
  }
  const spec = parseWatchSpec(request.url);
  if (spec === null) return new Response("bad watch request", { status: 400 });
  const pair = new WebSocketPair();
  ctx.acceptWebSocket(pair[1]);
  pair[1].serializeAttachment(spec);
  tellIfConcerned(pair[1], spec, maxOffset, concerns);
  return new Response(null, { status: 101, webSocket: pair[0] });
}

/**
 * Sends the notice to the watchers that `concerns` says have something now.
 * After an append of `appended` messages, at most that many receive watchers
 * of one group (and filter) are told, taking turns: every one of them would
 * race for the same messages, and all but the winners would ask for nothing.
 * Without `appended` (a retry came due, an ack freed a key) all are told.
 * A socket that is closing is skipped.
 */
export function notifyWatchers(
  ctx: DurableObjectState,
  maxOffset: number,
  concerns: (spec: WatchSpec) => boolean,
  appended?: number,
): void {
  const sockets = ctx.getWebSockets();
  if (sockets.length === 0) return;
  const told = new Map<string, number>();
  const start = turn++ % sockets.length;
  for (let i = 0; i < sockets.length; i++) {
    const ws = sockets[(start + i) % sockets.length]!;
    try {
      const spec = ws.deserializeAttachment() as WatchSpec | null;
      if (spec === null) continue;
      if (spec.kind === "receive" && appended !== undefined) {
        const key = `${spec.group}\u0000${spec.filter ?? ""}`;
        const n = told.get(key) ?? 0;
        if (n >= appended) continue;
        if (tellIfConcerned(ws, spec, maxOffset, concerns)) told.set(key, n + 1);
      } else {
        tellIfConcerned(ws, spec, maxOffset, concerns);
      }
    } catch {
      // closing: the watcher is gone
    }
  }
}

/** Where the next notify starts among the sockets, so receive watchers take turns. */
let turn = 0;

/**
 * Notices one watcher when its wait may be over. A pull watcher's offset
 * moves to `maxOffset` once told, so the same messages never tell it twice.
 */
function tellIfConcerned(
  ws: WebSocket,
  spec: WatchSpec,
  maxOffset: number,
  concerns: (spec: WatchSpec) => boolean,
): boolean {
  if (spec.kind === "pull" && spec.offset >= maxOffset) return false;
  let hit: boolean;
  try {
    hit = spec.anyChange === true || concerns(spec);
  } catch {
    hit = true; // the gateway's own look will say what is wrong
  }
  if (!hit) return false;
  ws.send(noticeText(maxOffset));
  if (spec.kind === "pull") ws.serializeAttachment({ ...spec, offset: maxOffset });
  return true;
}
