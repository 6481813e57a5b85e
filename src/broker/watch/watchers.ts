/**
 * The shard's side of hibernation-friendly long-polls (the gateway's side is
 * src/gateway/shard-watch.ts). A watcher is a WebSocket from the gateway that
 * the shard accepts with the hibernation API (`ctx.acceptWebSocket`): the
 * runtime keeps it open while the shard sleeps, and the shard only runs when
 * something happens. Each watcher says what it waits for (a pull from an
 * offset, or a group's receive, with an optional filter), kept in the
 * socket's attachment so it survives hibernation. The shard never reads from
 * them; after a change that could end a wait it sends a short notice.
 *
 * Parked waits must not amplify work (issue 16, item 6). So:
 * - watchers are grouped by what they wait for (wait-groups.ts) and each
 *   distinct condition is checked once per change, never once per watcher;
 * - a change is matched to the waits it can end: appends concern pulls past
 *   their offset and every group's receives; anything else (an ack freeing an
 *   orderly key, a retry coming due, a reset) concerns only the receives of
 *   the groups it changed, and never a pull, which reads by offset;
 * - a socket that closed leaves the groups at once (and is skipped if the
 *   close is still on its way);
 * - parked waits are capped per sender (a scoped token's subject) and per
 *   shard; over a cap the upgrade is answered 429 with `Retry-After`.
 */
import { Limits } from "../../protocol/limits.ts";
import { CheckMemo, WaitGroups } from "./wait-groups.ts";

/** What changed, when the shard knows: lets a check look at less than everything. */
export interface WakeHint {
  /** Messages were appended to the log from this offset on (and nothing else changed). */
  appendedFrom?: number;
}

/** What a group of writes changed, as the watchers need it. */
export interface WatchChange {
  /** Lowest offset appended, or null when nothing was. */
  appendedFrom: number | null;
  /** Groups whose receivable messages changed besides appends (`all`: every group's may have). */
  changedGroups: ReadonlySet<string> | "all";
}

/**
 * One check a shard answers for its watchers: is there a message at or
 * after `from` the filter lets through (pull); would a receive by `group`
 * hand out something, looking only at offsets from `since` when given, at
 * everything (due retries included) when null.
 */
export type WatchCondition =
  | { kind: "pull"; filter: string | null; from: number }
  | { kind: "receive"; group: string; filter: string | null; since: number | null };

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
 * marks a filter too long to keep in the attachment (2 KiB), once the shard
 * woke from hibernation and knows only the attachment: such a watcher hears
 * of every change that could concern it and its gateway looks for itself.
 */
export type WatchSpec =
  | { kind: "pull"; offset: number; filter: string | null; anyChange?: true }
  | { kind: "receive"; group: string; filter: string | null; anyChange?: true };

/** What a watcher's attachment holds: its spec (filter cut to fit) and whose wait it is. */
type Attachment = WatchSpec & { sender?: string };

/** Filters up to this many characters travel in the attachment. */
const MAX_ATTACHED_FILTER = 1500;

/** Tag of watcher sockets among a shard's WebSockets (sessions have their own). */
export const WATCH_TAG = "watch";

/**
 * The watch URL for a spec. `sender` (a scoped token's subject; none for the
 * admin space) counts the wait against that sender's cap.
 */
export function watchUrl(spec: WatchSpec, sender: string | null = null): string {
  const q = new URLSearchParams({ kind: spec.kind });
  if (spec.kind === "pull") q.set("offset", String(spec.offset));
  else q.set("group", spec.group);
  if (spec.filter !== null) q.set("filter", spec.filter);
  if (sender !== null) q.set("sender", sender);
  return `${WATCH_URL}?${q}`;
}

/** The spec a watch URL asks for, with its whole filter, or null when it is malformed. */
export function parseWatchSpec(url: string): WatchSpec | null {
  const q = new URL(url).searchParams;
  const raw = q.get("filter");
  const filter = raw === null || raw === "" || raw === "*" ? null : raw;
  if (q.get("kind") === "pull") {
    const offset = Number(q.get("offset"));
    if (!Number.isSafeInteger(offset) || offset < 0) return null;
    return { kind: "pull", offset, filter };
  }
  if (q.get("kind") === "receive") {
    const group = q.get("group");
    if (!group) return null;
    return { kind: "receive", group, filter };
  }
  return null;
}

/** The attachment of a spec: a filter too long to keep becomes `anyChange`. */
function attachment(spec: WatchSpec, sender: string | null): Attachment {
  const wide = spec.filter !== null && spec.filter.length > MAX_ATTACHED_FILTER;
  const kept: WatchSpec = wide ? { ...spec, filter: null, anyChange: true } : spec;
  return sender === null ? kept : { ...kept, sender };
}

function isAttachment(v: unknown): v is Attachment {
  const kind = (v as { kind?: unknown } | null)?.kind;
  return kind === "pull" || kind === "receive";
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

/** A watcher as the shard holds it in memory: its spec with the whole filter, and whose it is. */
interface Watcher {
  spec: WatchSpec;
  sender: string | null;
}

/** The shared part of a group of pull watchers' condition (each group is one offset). */
interface PullWait {
  filter: string | null;
  offset: number;
  anyChange: boolean;
}

/** The shared condition of a group of receive watchers. */
interface ReceiveWait {
  group: string;
  filter: string | null;
  anyChange: boolean;
}

/** Counters of a shard's watchers, for tests and stats. */
export interface WatchStats {
  /** Parked waits (open watcher sockets). */
  waits: number;
  /** Distinct conditions they wait on. */
  conditions: number;
  /** Conditions checked since the object started (each costs a bounded scan). */
  checks: number;
}

/** Caps on parked waits, checked when a watcher opens. */
export interface WatchCaps {
  /** Per scoped sender (token subject) on this shard; the admin space has none. */
  perSender: number;
  /** On this shard, everyone together (well below the platform's hibernatable WebSockets per object). */
  total: number;
}

export const DEFAULT_WATCH_CAPS: WatchCaps = {
  perSender: Limits.maxParkedWaitsPerToken,
  total: Limits.maxParkedWaitsPerShard,
};

/** The watchers of one shard: accepted, grouped, told, forgotten. */
export class ShardWatchers {
  readonly #ctx: DurableObjectState;
  readonly #caps: WatchCaps;
  /** Built from the sockets' attachments on first use (after a wake from hibernation too). */
  #loaded = false;
  readonly #watchers = new Map<WebSocket, Watcher>();
  readonly #pulls = new WaitGroups<WebSocket, PullWait>();
  readonly #receives = new WaitGroups<WebSocket, ReceiveWait>();
  readonly #perSender = new Map<string, number>();
  #checks = 0;

  constructor(ctx: DurableObjectState, caps: WatchCaps = DEFAULT_WATCH_CAPS) {
    this.#ctx = ctx;
    this.#caps = caps;
  }

  /** Counters: waits, distinct conditions, checks run. */
  stats(): WatchStats {
    this.#load();
    return {
      waits: this.#watchers.size,
      conditions: this.#pulls.conditions + this.#receives.conditions,
      checks: this.#checks,
    };
  }

  /**
   * Answers a watcher's upgrade: 101 with the socket accepted for hibernation
   * (426, 400, or 429 over a cap, otherwise). The watcher is told at once when
   * its wait is already over, so the gateway needs no second look after
   * opening it: what was there before shows now, what comes after sends a
   * notice.
   */
  accept(request: Request, maxOffset: number, check: (c: WatchCondition) => boolean): Response {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("this object only accepts watcher WebSockets", { status: 426 });
    }
    const spec = parseWatchSpec(request.url);
    if (spec === null) return new Response("bad watch request", { status: 400 });
    const sender = new URL(request.url).searchParams.get("sender");
    this.#load();
    const over =
      this.#watchers.size >= this.#caps.total
        ? "this queue has too many parked waits"
        : sender !== null && (this.#perSender.get(sender) ?? 0) >= this.#caps.perSender
          ? `this token has ${this.#caps.perSender} waits parked on this queue already`
          : null;
    if (over !== null) {
      return new Response(over, {
        status: 429,
        headers: { "Retry-After": String(Limits.parkedWaitRetryAfterSeconds) },
      });
    }
    const pair = new WebSocketPair();
    const ws = pair[1];
    this.#ctx.acceptWebSocket(ws, [WATCH_TAG]);
    ws.serializeAttachment(attachment(spec, sender));
    const w: Watcher = { spec, sender };
    this.#add(ws, w);
    // The first look (the one a later change would have made) is a check of its own.
    const hit = (c: WatchCondition) => {
      this.#checks++;
      try {
        return check(c);
      } catch {
        return true; // the gateway's own look will say what is wrong
      }
    };
    if (spec.kind === "pull") {
      if (spec.offset < maxOffset && hit({ kind: "pull", filter: spec.filter, from: spec.offset }))
        this.#tellPull(ws, w, maxOffset);
    } else if (hit({ kind: "receive", group: spec.group, filter: spec.filter, since: null })) {
      this.#send(ws, maxOffset);
    }
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /**
   * Tells the watchers whose wait `change` may have ended, checking each
   * distinct condition once. After an append of `n` messages, at most `n`
   * receive watchers of one group (and filter) are told, taking turns: every
   * one of them would race for the same messages, and all but the winners
   * would ask for nothing. After another change of a group all of its
   * receive watchers are told.
   */
  notify(maxOffset: number, change: WatchChange, check: (c: WatchCondition) => boolean): void {
    this.#load();
    if (this.#watchers.size === 0) return;
    const memo = new CheckMemo();
    const { appendedFrom, changedGroups } = change;
    if (appendedFrom !== null) {
      this.#tellPulls(maxOffset, appendedFrom, check, memo);
    }
    const appended = appendedFrom === null ? 0 : maxOffset - appendedFrom;
    for (const g of this.#receives.groups()) {
      const { group, filter, anyChange } = g.condition;
      const full = changedGroups === "all" || changedGroups.has(group);
      if (!full && appendedFrom === null) continue;
      const since = full ? null : appendedFrom;
      const hit =
        anyChange ||
        memo.check(`r\u0000${group}\u0000${filter ?? ""}\u0000${since ?? "all"}`, () =>
          check({ kind: "receive", group, filter, since }),
        );
      if (!hit) continue;
      let room = full ? Number.POSITIVE_INFINITY : appended;
      for (const ws of [...g.waiters]) {
        if (room <= 0) break;
        if (!this.#send(ws, maxOffset)) continue;
        this.#receives.toBack(ws);
        room--;
      }
    }
    this.#checks += memo.runs;
  }

  /** A socket closed or failed: its wait is over. */
  closed(ws: WebSocket): void {
    // Loaded first: a close may be what woke the object, and the socket must not come back with the load.
    this.#load();
    this.#remove(ws);
  }

  /**
   * Tells the pull watchers with messages past their offset: one check per
   * distinct (filter, start), where the start is the watcher's offset or the
   * append's first offset if later (what came before was looked at when the
   * watcher last was).
   */
  #tellPulls(
    maxOffset: number,
    appendedFrom: number,
    check: (c: WatchCondition) => boolean,
    memo: CheckMemo,
  ): void {
    for (const g of this.#pulls.groups()) {
      const { filter, offset, anyChange } = g.condition;
      if (offset >= maxOffset) continue;
      const from = Math.max(offset, appendedFrom);
      const hit =
        anyChange ||
        memo.check(`p\u0000${filter ?? ""}\u0000${from}`, () =>
          check({ kind: "pull", filter, from }),
        );
      if (!hit) continue;
      for (const ws of [...g.waiters]) {
        const w = this.#watchers.get(ws);
        if (w) this.#tellPull(ws, w, maxOffset);
      }
    }
  }

  /** Tells a pull watcher; its offset moves to `maxOffset`, so the same messages never tell it twice. */
  #tellPull(ws: WebSocket, w: Watcher, maxOffset: number): void {
    if (w.spec.kind !== "pull" || !this.#send(ws, maxOffset)) return;
    w.spec = { ...w.spec, offset: maxOffset };
    try {
      ws.serializeAttachment(attachment(w.spec, w.sender));
    } catch {
      // closing
    }
    this.#index(ws, w);
  }

  /** Sends a notice; false (and the watcher forgotten) when its socket is no longer open. */
  #send(ws: WebSocket, maxOffset: number): boolean {
    if (ws.readyState !== WebSocket.OPEN) {
      this.#remove(ws);
      return false;
    }
    try {
      ws.send(noticeText(maxOffset));
      return true;
    } catch {
      this.#remove(ws);
      return false;
    }
  }

  /**
   * Rebuilds the groups from the sockets' attachments once per start of the
   * object (a wake from hibernation included). Only tagged sockets are
   * watchers (sessions have their own); one accepted by code from before the
   * tag is never told, and its wait simply ends at its `waitMs`.
   */
  #load(): void {
    if (this.#loaded) return;
    this.#loaded = true;
    for (const ws of this.#ctx.getWebSockets(WATCH_TAG)) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      try {
        const a: unknown = ws.deserializeAttachment();
        if (!isAttachment(a)) continue;
        const { sender, ...spec } = a;
        this.#add(ws, { spec, sender: sender ?? null });
      } catch {
        // closing
      }
    }
  }

  #add(ws: WebSocket, w: Watcher): void {
    this.#watchers.set(ws, w);
    if (w.sender !== null) this.#perSender.set(w.sender, (this.#perSender.get(w.sender) ?? 0) + 1);
    this.#index(ws, w);
  }

  /** Puts a watcher in the group of its current condition. */
  #index(ws: WebSocket, w: Watcher): void {
    const { spec } = w;
    const anyChange = spec.anyChange === true;
    const f = spec.filter ?? "";
    if (spec.kind === "pull") {
      const key = `${anyChange ? "*" : "="}${f}\u0000${spec.offset}`;
      this.#pulls.add(ws, key, { filter: spec.filter, offset: spec.offset, anyChange });
    } else {
      const key = `${anyChange ? "*" : "="}${spec.group}\u0000${f}`;
      this.#receives.add(ws, key, { group: spec.group, filter: spec.filter, anyChange });
    }
  }

  #remove(ws: WebSocket): void {
    const w = this.#watchers.get(ws);
    if (!w) return;
    this.#watchers.delete(ws);
    this.#pulls.delete(ws);
    this.#receives.delete(ws);
    if (w.sender !== null) {
      const n = (this.#perSender.get(w.sender) ?? 1) - 1;
      if (n > 0) this.#perSender.set(w.sender, n);
      else this.#perSender.delete(w.sender);
    }
  }
}
