/**
 * The shard's side of streaming sessions (docs/protocol.md). A session is a
 * WebSocket the gateway authenticated and handed to this shard, accepted
 * with the hibernation API: from then on frames go straight between the SDK
 * and the shard, the gateway out of the path.
 *
 * - Sends join the shard's group commit, shared with RPC callers: frames
 *   arriving while a commit is under way go in the next one. A `sent` frame
 *   leaves only once its messages are durable.
 * - Subscriptions live in the socket's attachment (no timer, no memory): on
 *   every change the shard notifies ({@link SessionHub.notify}, the same
 *   point that tells the watcher sockets) each subscribed session with credit
 *   gets what is there for it, claimed in the same commit as the change
 *   (receive mode) or read by offset (pull mode), and pushed once durable.
 * - Lazy writes: an ack of a receipt this shard pushed, and an offset commit,
 *   are answered at once and written with the next group of writes, or within
 *   {@link LAZY_MS}. Lost in a crash, they only cause a redelivery: the
 *   message becomes visible again after its invisible time, or is read again
 *   from the last written offset. At-least-once holds; nothing acknowledged
 *   to a producer depends on them.
 */
import { EdgemqError } from "../../protocol/errors.ts";
import { encodeReceipt } from "../../protocol/ids.ts";
import { Limits } from "../../protocol/limits.ts";
import { newMsgId } from "../../protocol/msg-id.ts";
import {
  type ClientFrame,
  type SessionSendResult,
  SESSION_VERSION,
  SessionClose,
  SessionLimits,
  closeCodeFor,
  errorFrame,
  parseClientFrame,
  sessionReceipt,
} from "../../protocol/session.ts";
import type { AckResult, Message, TopicConfig } from "../../protocol/types.ts";
import { type NormalizedMessage, parseMessage } from "../../protocol/requests/message.ts";
import { principalFor, sessionGrant } from "../../gateway/auth.ts";
import type { ReceiptRef } from "../store/consumption.ts";
import { type SessionAttachment, isSessionAttachment, readHandoff } from "./attachment.ts";
import type { SessionHost } from "./host.ts";
import { messageFrames } from "./push-frames.ts";

/** Tag of session sockets among the shard's hibernatable sockets (watchers have none). */
export const SESSION_TAG = "session";

/** Longest a lazy write (ack, offset commit) waits for a group of writes to join. */
export const LAZY_MS = 20;

/** An ack is answered before it is written only if its receipt has this much invisible time left. */
const LAZY_MARGIN_MS = 1000;

/** Receipts remembered for lazy acks; past this the oldest are forgotten (their acks are written at once). */
const MAX_TRACKED = 100_000;

/** Claim rounds per session per change (each up to 1000 messages). */
const MAX_ROUNDS = 4;

/** What changed, when the shard knows (see waiters.ts's WakeHint). */
export interface ChangeHint {
  appendedFrom?: number;
}

/** A coded error for what a write threw (RPC errors and a full disk included), or undefined. */
function coded(e: unknown): EdgemqError | undefined {
  const known = EdgemqError.from(e);
  if (known) return known;
  if (e instanceof Error && /SQLITE_FULL/.test(e.message)) {
    return new EdgemqError(
      "STORAGE_FULL",
      "the broker's disk is full (SQLITE_FULL): nothing of this frame was stored",
    );
  }
  return undefined;
}

function jsonError(e: EdgemqError): Response {
  return new Response(JSON.stringify(e.toJSON()), {
    status: e.status,
    headers: { "content-type": "application/json" },
  });
}

/** The id of a frame, for its error frame. */
function idOf(f: ClientFrame): number | null {
  return "id" in f ? f.id : null;
}

export class SessionHub {
  readonly #host: SessionHost;
  /** Session sockets of this wake with their attachments (rebuilt from the runtime after hibernation). */
  #live: Map<WebSocket, SessionAttachment> | null = null;
  /** Send frames unanswered per session (nothing is pending across hibernation). */
  readonly #inflight = new Map<WebSocket, number>();
  readonly #badFrames = new Map<WebSocket, number>();
  /** Receipts this hub pushed, by group and offset: lets their acks be answered before they are written. */
  readonly #handedOut = new Map<string, { handle: string; visibleAt: number }>();
  readonly #lazyAcks = new Map<string, ReceiptRef[]>();
  readonly #lazyCommits = new Map<string, number>();
  #lazyTimer: ReturnType<typeof setTimeout> | null = null;
  /** Pushed frames leave in order, each once what it shows is durable. */
  #delivery: Promise<void> = Promise.resolve();
  #turn = 0;

  constructor(host: SessionHost) {
    this.#host = host;
  }

  #sessions(): Map<WebSocket, SessionAttachment> {
    if (this.#live === null) {
      this.#live = new Map();
      for (const ws of this.#host.ctx.getWebSockets(SESSION_TAG)) {
        try {
          const a = ws.deserializeAttachment();
          if (isSessionAttachment(a)) this.#live.set(ws, a);
        } catch {
          // closing
        }
      }
    }
    return this.#live;
  }

  /** Sessions open on this shard. */
  get size(): number {
    return this.#sessions().size;
  }

  #save(ws: WebSocket, att: SessionAttachment): void {
    ws.serializeAttachment(att);
    this.#sessions().set(ws, att);
  }

  /** Whether `ws` is a session socket (watchers are not). */
  owns(ws: WebSocket): boolean {
    if (this.#sessions().has(ws)) return true;
    try {
      return isSessionAttachment(ws.deserializeAttachment());
    } catch {
      return false;
    }
  }

  // ---- accept ---------------------------------------------------------------

  /** Answers the gateway's handoff: 101 with the socket accepted for hibernation, or a contract error. */
  accept(request: Request): Response {
    const handoff = readHandoff(request);
    if (handoff === null || request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return jsonError(new EdgemqError("BAD_REQUEST", "sessions are handed over by the gateway"));
    }
    let config: TopicConfig;
    try {
      config = this.#host.store.state.topicConfig();
    } catch (e) {
      return jsonError(coded(e) ?? new EdgemqError("TOPIC_NOT_FOUND", "topic not found"));
    }
    const live = this.#sessions();
    if (live.size >= SessionLimits.maxSessionsPerShard) {
      return jsonError(
        new EdgemqError(
          "RATE_LIMITED",
          `queue ${this.#host.store.state.queueId} holds ${live.size} sessions, its most`,
        ),
      );
    }
    if (
      handoff.grant &&
      this.#subjectSessions(handoff.grant.sub) >= SessionLimits.maxSessionsPerSubject
    ) {
      return jsonError(
        new EdgemqError(
          "RATE_LIMITED",
          `token subject ${handoff.grant.sub} holds ${SessionLimits.maxSessionsPerSubject} sessions on this queue, its most`,
        ),
      );
    }
    if (handoff.grant === null && this.#pending(Date.now()) >= SessionLimits.maxPendingAuth) {
      return jsonError(
        new EdgemqError("RATE_LIMITED", "too many sessions waiting for their auth frame here"),
      );
    }
    if (handoff.groupConfig) this.#host.store.state.rememberGroup(handoff.groupConfig, Date.now());
    const pair = new WebSocketPair();
    const ws = pair[1];
    this.#host.ctx.acceptWebSocket(ws, [SESSION_TAG]);
    const att: SessionAttachment = {
      kind: "session",
      id: crypto.randomUUID(),
      group: handoff.group,
      grant: handoff.grant,
      openedAt: Date.now(),
      subscription: null,
    };
    this.#save(ws, att);
    if (att.grant) ws.send(this.#ready(att, config));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /**
   * Sessions still waiting for their auth frame; those waiting past
   * `authTimeoutMs` are closed now (checked at each tokenless upgrade: no timer).
   */
  #pending(now: number): number {
    let n = 0;
    for (const [ws, a] of [...this.#sessions()]) {
      if (a.grant !== null) continue;
      if (now - (a.openedAt ?? 0) > SessionLimits.authTimeoutMs) {
        this.#close(ws, SessionClose.UNAUTHORIZED, "no auth frame in time");
      } else n++;
    }
    return n;
  }

  #subjectSessions(sub: string): number {
    let n = 0;
    for (const a of this.#sessions().values()) if (a.grant?.sub === sub) n++;
    return n;
  }

  #ready(att: SessionAttachment, config: TopicConfig): string {
    return JSON.stringify({
      type: "ready",
      v: SESSION_VERSION,
      session: att.id,
      topic: config.topic,
      queue: this.#host.store.state.queueId,
      queues: config.queues,
      group: att.group,
      maxOffset: this.#host.store.state.maxOffset(),
      expiresAt: att.grant!.exp,
      publish: att.grant!.publish,
      consume: att.grant!.consume,
      limits: {
        maxClientFrameBytes: SessionLimits.maxClientFrameBytes,
        maxPushFrameBytes: SessionLimits.maxPushFrameBytes,
        maxFrameItems: SessionLimits.maxFrameItems,
        maxInflightSends: SessionLimits.maxInflightSends,
        maxCredit: SessionLimits.maxCredit,
        maxFilterChars: SessionLimits.maxFilterChars,
      },
    });
  }

  // ---- frames -----------------------------------------------------------------

  /** Handles one frame of a session. Never throws: a bad frame gets an error frame. */
  async message(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const att = this.#sessions().get(ws);
    if (!att) return;
    let frame: ClientFrame;
    try {
      frame = parseClientFrame(data);
    } catch (e) {
      if (att.grant === null) {
        this.#close(ws, SessionClose.UNAUTHORIZED, "the first frame must be a valid auth frame");
        return;
      }
      this.#bad(ws, coded(e) ?? new EdgemqError("BAD_REQUEST", "bad frame"), null);
      return;
    }
    if (att.grant === null) {
      await this.#authenticate(ws, att, frame);
      return;
    }
    if (att.grant.exp !== null && Date.now() >= att.grant.exp) {
      this.#close(ws, SessionClose.TOKEN_EXPIRED, "token expired");
      return;
    }
    try {
      switch (frame.type) {
        case "auth":
          throw new EdgemqError("BAD_REQUEST", "this session is already authenticated");
        case "send":
          await this.#send(ws, att, frame);
          break;
        case "subscribe":
          await this.#subscribe(ws, att, frame);
          break;
        case "unsubscribe":
          att.subscription = null;
          this.#save(ws, att);
          this.#reply(ws, { type: "unsubscribed", id: frame.id });
          break;
        case "credit":
          await this.#credit(ws, att, frame.n);
          break;
        case "ack":
          await this.#ack(ws, att, frame);
          break;
        case "nack":
          await this.#nack(ws, att, frame);
          break;
        case "invisibility":
          await this.#invisibility(ws, att, frame);
          break;
        case "commit":
          this.#commit(ws, att, frame);
          break;
      }
      this.#badFrames.delete(ws);
    } catch (e) {
      const err = coded(e);
      if (!err) console.error("edgemq: session frame failed", e);
      this.#bad(ws, err ?? new EdgemqError("INTERNAL", "internal error"), idOf(frame));
    }
  }

  /** An error frame; too many in a row close the session for a protocol violation. */
  #bad(ws: WebSocket, e: EdgemqError, id: number | null): void {
    const n = (this.#badFrames.get(ws) ?? 0) + 1;
    this.#badFrames.set(ws, n);
    this.#sendRaw(ws, errorFrame(e, id));
    if (n >= SessionLimits.maxBadFrames) {
      this.#close(ws, SessionClose.PROTOCOL_VIOLATION, `${n} bad frames in a row`);
    }
  }

  #reply(ws: WebSocket, frame: object): void {
    this.#sendRaw(ws, JSON.stringify(frame));
  }

  #sendRaw(ws: WebSocket, text: string): void {
    try {
      ws.send(text);
    } catch {
      // the client went away; its close event cleans up
    }
  }

  #close(ws: WebSocket, code: number, reason: string): void {
    this.closed(ws);
    try {
      ws.close(code, reason.slice(0, 120));
    } catch {
      // already closed
    }
  }

  /** Forgets a session whose socket closed (its receipts lapse after their invisible time). */
  closed(ws: WebSocket): void {
    this.#sessions().delete(ws);
    this.#inflight.delete(ws);
    this.#badFrames.delete(ws);
  }

  /** Tells every session the topic's queue count (after the topic was reconfigured). */
  route(topic: string, queues: number): void {
    const frame = JSON.stringify({ type: "route", topic, queues });
    for (const ws of this.#sessions().keys()) this.#sendRaw(ws, frame);
  }

  /** Closes every session (the topic was deleted, or the shard reconfigured). */
  closeAll(code: number, reason: string): void {
    for (const ws of [...this.#sessions().keys()]) this.#close(ws, code, reason);
  }

  async #authenticate(ws: WebSocket, att: SessionAttachment, frame: ClientFrame): Promise<void> {
    if (frame.type !== "auth") {
      this.#close(
        ws,
        SessionClose.UNAUTHORIZED,
        "authenticate first: the first frame must be auth",
      );
      return;
    }
    try {
      const config = this.#host.store.state.topicConfig();
      const principal = await principalFor(frame.token, this.#host.env);
      const grant = sessionGrant(principal, config.topic, att.group);
      if (this.#subjectSessions(grant.sub) >= SessionLimits.maxSessionsPerSubject) {
        throw new EdgemqError("RATE_LIMITED", "too many sessions for this token on this queue");
      }
      if (att.group !== null && grant.consume) {
        await this.#remember(att.group);
      }
      if (!this.#sessions().has(ws)) return; // closed meanwhile
      att.grant = grant;
      this.#save(ws, att);
      this.#sendRaw(ws, this.#ready(att, config));
    } catch (e) {
      const err = coded(e) ?? new EdgemqError("INTERNAL", "authentication failed");
      this.#sendRaw(ws, errorFrame(err));
      this.#close(ws, closeCodeFor(err.code), err.message);
    }
  }

  // ---- send ---------------------------------------------------------------------

  async #send(
    ws: WebSocket,
    att: SessionAttachment,
    f: Extract<ClientFrame, { type: "send" }>,
  ): Promise<void> {
    const config = this.#host.store.state.topicConfig();
    if (!att.grant!.publish) {
      throw new EdgemqError("FORBIDDEN", `token may not publish to ${config.topic}`);
    }
    const pending = this.#inflight.get(ws) ?? 0;
    if (pending >= SessionLimits.maxInflightSends) {
      throw new EdgemqError(
        "RATE_LIMITED",
        `at most ${SessionLimits.maxInflightSends} send frames unanswered per session; wait for results`,
      );
    }
    const now = Date.now();
    const results = new Array<SessionSendResult>(f.messages.length);
    const valid: NormalizedMessage[] = [];
    const index: number[] = [];
    f.messages.forEach((raw, i) => {
      try {
        valid.push(
          parseMessage(raw, { now, newId: newMsgId, index: i, maxBytes: config.maxMessageBytes }),
        );
        index.push(i);
      } catch (e) {
        const err = EdgemqError.from(e);
        if (!err || f.atomic) throw e;
        const msgId = (raw as { msgId?: unknown } | null)?.msgId;
        results[i] = {
          ...(typeof msgId === "string" && { msgId }),
          error: { code: err.code, message: err.message },
        };
      }
    });
    this.#inflight.set(ws, pending + 1);
    try {
      if (valid.length > 0) {
        try {
          const stored = await this.#host.write((s, at) => {
            this.#flushLazy();
            this.#host.assertRoomFor(valid);
            // The same msgId space as the token's HTTP sends.
            return s.log.append(valid, at, att.grant!.sender ?? null);
          });
          stored.forEach((r, j) => (results[index[j]!] = r));
        } catch (e) {
          const err = coded(e);
          if (!err || f.atomic) throw err ?? e;
          valid.forEach((m, j) => {
            results[index[j]!] = {
              msgId: m.msgId,
              error: { code: err.code, message: err.message },
            };
          });
        }
        // The output gate holds the frame until the commit anyway; waiting says so here.
        await this.#host.durable();
      }
    } finally {
      const left = (this.#inflight.get(ws) ?? 1) - 1;
      if (left > 0) this.#inflight.set(ws, left);
      else this.#inflight.delete(ws);
    }
    this.#reply(ws, { type: "sent", id: f.id, results });
  }

  // ---- subscribe and push ---------------------------------------------------------

  #consumer(att: SessionAttachment, what: string): string {
    const topic = this.#host.store.state.topicConfig().topic;
    if (!att.grant!.consume) {
      throw new EdgemqError(
        "FORBIDDEN",
        att.group === null
          ? `token may not consume ${topic}`
          : `token may not consume ${topic} as group ${att.group}`,
      );
    }
    if (att.group === null && what !== "pull") {
      throw new EdgemqError(
        "BAD_REQUEST",
        `${what} needs the session's group (?group= in the session URL)`,
      );
    }
    return att.group ?? "";
  }

  async #subscribe(
    ws: WebSocket,
    att: SessionAttachment,
    f: Extract<ClientFrame, { type: "subscribe" }>,
  ): Promise<void> {
    this.#consumer(att, f.mode === "receive" ? "receive mode" : "pull");
    if (att.subscription !== null) {
      throw new EdgemqError("BAD_REQUEST", "this session is subscribed already; unsubscribe first");
    }
    this.#host.filter(f.filter); // a bad filter is refused now, with its position
    if (f.mode === "receive") {
      if (!this.#host.store.state.groupConfig(att.group!)) await this.#remember(att.group!);
      att.subscription = {
        mode: "receive",
        filter: f.filter,
        invisibleMs: f.invisibleMs,
        credit: f.credit,
      };
    } else {
      let offset = f.offset;
      if (offset === null) {
        if (att.group === null) {
          throw new EdgemqError(
            "BAD_REQUEST",
            "pull mode needs an offset, or the session's group to start from its committed offset",
          );
        }
        const s = this.#host.store;
        offset = s.consumption.committedOffset(att.group) ?? s.state.minOffset();
      }
      att.subscription = { mode: "pull", filter: f.filter, offset, credit: f.credit };
    }
    try {
      this.#save(ws, att);
    } catch {
      // Cloudflare keeps at most 2 KiB per attachment (local workerd does not
      // enforce it): a long filter (non-ASCII counts double) with a long subject.
      att.subscription = null;
      this.#save(ws, att);
      throw new EdgemqError(
        "BAD_REQUEST",
        "this filter does not fit in a session's state; use a shorter one, or HTTP",
      );
    }
    this.#reply(ws, {
      type: "subscribed",
      id: f.id,
      mode: f.mode,
      offset: att.subscription.mode === "pull" ? att.subscription.offset : null,
    });
    await this.#kick(ws);
  }

  async #credit(ws: WebSocket, att: SessionAttachment, n: number): Promise<void> {
    const s = att.subscription;
    if (s === null) throw new EdgemqError("BAD_REQUEST", "credit before subscribe");
    this.#addCredit(ws, att, n);
    if (n > 0) await this.#kick(ws);
  }

  #addCredit(ws: WebSocket, att: SessionAttachment, n: number): void {
    const s = att.subscription;
    if (s === null || n === 0) return;
    s.credit = Math.max(0, Math.min(SessionLimits.maxCredit, s.credit + n));
    this.#save(ws, att);
  }

  /** Pushes to one session what is there for it now (a claim goes through the group commit). */
  async #kick(ws: WebSocket): Promise<void> {
    const att = this.#sessions().get(ws);
    const s = att?.subscription;
    if (!att || !s || s.credit <= 0) return;
    if (s.mode === "pull") {
      this.#deliver(ws, this.#collect(ws, att, Date.now()));
      return;
    }
    const frames = await this.#host.write((_s, now) => {
      this.#flushLazy();
      return this.#collect(ws, att, now);
    });
    this.#deliver(ws, frames);
  }

  /**
   * The notify point: after a change that may give subscribers something (an
   * append, a retry come due, an ack freeing an orderly key, a commit), in the
   * change's own event, so claims commit with it. Sessions take turns.
   */
  notify(hint?: ChangeHint): void {
    const live = this.#sessions();
    if (live.size === 0) return;
    const ready: [WebSocket, SessionAttachment][] = [];
    for (const e of live) if (e[1].subscription && e[1].subscription.credit > 0) ready.push(e);
    if (ready.length === 0) return;
    const now = Date.now();
    const start = this.#turn++ % ready.length;
    for (let i = 0; i < ready.length; i++) {
      const [ws, att] = ready[(start + i) % ready.length]!;
      if (att.grant?.exp != null && now >= att.grant.exp) {
        this.#close(ws, SessionClose.TOKEN_EXPIRED, "token expired");
        continue;
      }
      try {
        this.#deliver(ws, this.#collect(ws, att, now, hint));
      } catch (e) {
        const err = coded(e);
        if (err?.code === "TOPIC_NOT_FOUND") {
          this.#close(ws, SessionClose.NOT_FOUND, "topic deleted");
        } else {
          console.error("edgemq: session push failed", e);
        }
      }
    }
  }

  /**
   * Claims (receive) or reads (pull) what one session may have now, within
   * its credit; answers the frames to push. Updates the attachment.
   */
  #collect(ws: WebSocket, att: SessionAttachment, now: number, hint?: ChangeHint): string[] {
    const sub = att.subscription;
    if (!sub || sub.credit <= 0) return [];
    const h = this.#host;
    const st = h.store;
    const filter = h.filter(sub.filter);
    const frames: string[] = [];
    if (sub.mode === "receive") {
      const group = st.state.groupConfig(att.group!);
      if (!group) return [];
      const has =
        hint?.appendedFrom === undefined
          ? st.receiving.hasReceivable(group.group, filter, now)
          : st.receiving.hasReceivableSince(group.group, filter, now, hint.appendedFrom);
      if (!has) return [];
      const { topic } = st.state.topicConfig();
      const queue = st.state.queueId;
      for (let round = 0; round < MAX_ROUNDS && sub.credit > 0; round++) {
        const want = Math.min(sub.credit, Limits.maxMax);
        // Its own (nested) transaction: it commits with the write or change under way.
        const claimed = h.writeNow((s, at) =>
          s.receiving.receive(group, want, sub.invisibleMs, filter, at),
        );
        if (claimed.length === 0) break;
        sub.credit -= claimed.length;
        const messages: Message[] = claimed.map((c) => {
          this.#track(group.group, c.message.offset, c.handle, now + sub.invisibleMs);
          return {
            ...c.message,
            receipt: encodeReceipt({
              topic,
              group: group.group,
              queue,
              offset: c.message.offset,
              handle: c.handle,
            }),
          };
        });
        frames.push(...messageFrames(messages));
        if (claimed.length < want) break;
      }
    } else {
      for (let round = 0; round < MAX_ROUNDS && sub.credit > 0; round++) {
        if (sub.offset >= st.state.maxOffset()) break;
        const r = st.log.pull(sub.offset, Math.min(sub.credit, Limits.maxMax), filter, now);
        const moved = r.nextOffset !== sub.offset;
        sub.offset = r.nextOffset;
        if (r.messages.length > 0 || r.skipped > 0) {
          sub.credit -= r.messages.length;
          const tail = `"nextOffset":${r.nextOffset}${r.skipped > 0 ? `,"skipped":${r.skipped}` : ""}`;
          frames.push(...messageFrames(r.messages, tail));
        } else if (!moved) {
          break;
        }
      }
    }
    this.#save(ws, att);
    return frames;
  }

  /** Fetches a group's config from the registry (creating the group) and remembers it here. */
  async #remember(group: string): Promise<void> {
    const config = await this.#host.subscribeGroup(group);
    this.#host.store.state.rememberGroup(config, Date.now());
  }

  #track(group: string, offset: number, handle: string, visibleAt: number): void {
    const key = `${group}\u0000${offset}`;
    this.#handedOut.delete(key);
    this.#handedOut.set(key, { handle, visibleAt });
    if (this.#handedOut.size > MAX_TRACKED) {
      const oldest = this.#handedOut.keys().next().value;
      if (oldest !== undefined) this.#handedOut.delete(oldest);
    }
  }

  /** Sends pushed frames once what they show is durable, in order. */
  #deliver(ws: WebSocket, frames: string[]): void {
    if (frames.length === 0) return;
    const durable = this.#host.durable();
    this.#delivery = Promise.all([this.#delivery, durable]).then(
      () => {
        for (const f of frames) this.#sendRaw(ws, f);
      },
      (e: unknown) => console.error("edgemq: a commit failed; pushed frames dropped", e),
    );
  }

  // ---- settle -------------------------------------------------------------------------

  /** Receipts of a settle frame: this session's own ones as refs, foreign or malformed ones as error results. */
  #receipts(
    group: string,
    receipts: string[],
    results: AckResult[],
  ): { i: number; receipt: string; ref: ReceiptRef }[] {
    const topic = this.#host.store.state.topicConfig().topic;
    const queue = this.#host.store.state.queueId;
    const out: { i: number; receipt: string; ref: ReceiptRef }[] = [];
    receipts.forEach((receipt, i) => {
      try {
        out.push({ i, receipt, ref: sessionReceipt(receipt, topic, group, queue) });
      } catch (e) {
        const err = EdgemqError.from(e) ?? new EdgemqError("BAD_REQUEST", "malformed receipt");
        results[i] = { receipt, error: { code: err.code, message: err.message } };
      }
    });
    return out;
  }

  async #ack(
    ws: WebSocket,
    att: SessionAttachment,
    f: Extract<ClientFrame, { type: "ack" }>,
  ): Promise<void> {
    const group = this.#consumer(att, "ack");
    const results = new Array<AckResult>(f.receipts.length);
    const now = Date.now();
    const eager: { i: number; receipt: string; ref: ReceiptRef }[] = [];
    const lazy: ReceiptRef[] = [];
    for (const r of this.#receipts(group, f.receipts, results)) {
      const key = `${group}\u0000${r.ref.offset}`;
      const t = this.#handedOut.get(key);
      if (t && t.handle === r.ref.handle && t.visibleAt - now > LAZY_MARGIN_MS) {
        // Pushed by this shard and still invisible for a while: nothing can
        // hand it out again before the lazy write lands.
        this.#handedOut.delete(key);
        lazy.push(r.ref);
        results[r.i] = { receipt: r.receipt, ok: true };
      } else {
        eager.push(r);
      }
    }
    this.#addCredit(ws, att, f.credit);
    if (lazy.length)
      this.#queueLazy(() => {
        const list = this.#lazyAcks.get(group);
        if (list) list.push(...lazy);
        else this.#lazyAcks.set(group, lazy);
        return (this.#lazyAcks.get(group)?.length ?? 0) >= SessionLimits.maxFrameItems;
      });
    if (eager.length) {
      const out = await this.#host.write((s, at) => {
        this.#flushLazy();
        return s.consumption.ack(
          group,
          eager.map((e) => e.ref),
          at,
        );
      });
      out.forEach((o, j) => {
        const e = eager[j]!;
        results[e.i] = o.ok
          ? { receipt: e.receipt, ok: true }
          : { receipt: e.receipt, error: { code: o.code, message: o.message } };
      });
    }
    if (f.id !== null) this.#reply(ws, { type: "acked", id: f.id, results });
    if (f.credit > 0) await this.#kick(ws);
  }

  async #nack(
    ws: WebSocket,
    att: SessionAttachment,
    f: Extract<ClientFrame, { type: "nack" }>,
  ): Promise<void> {
    const group = this.#consumer(att, "nack");
    if (!this.#host.store.state.groupConfig(group)) await this.#remember(group);
    const config = this.#host.store.state.groupConfig(group)!;
    const results = new Array<AckResult>(f.receipts.length);
    const mine = this.#receipts(group, f.receipts, results);
    this.#addCredit(ws, att, f.credit);
    if (mine.length) {
      for (const r of mine) this.#handedOut.delete(`${group}\u0000${r.ref.offset}`);
      const refs = mine.map((r) => r.ref);
      const out = await this.#host.write((s, now) => {
        this.#flushLazy();
        return s.consumption.nack(config, refs, f.delayMs ?? undefined, now);
      });
      out.forEach((o, j) => {
        const r = mine[j]!;
        results[r.i] = o.ok
          ? { receipt: r.receipt, ok: true }
          : { receipt: r.receipt, error: { code: o.code, message: o.message } };
      });
    }
    if (f.id !== null) this.#reply(ws, { type: "nacked", id: f.id, results });
    if (f.credit > 0) await this.#kick(ws);
  }

  async #invisibility(
    ws: WebSocket,
    att: SessionAttachment,
    f: Extract<ClientFrame, { type: "invisibility" }>,
  ): Promise<void> {
    const group = this.#consumer(att, "invisibility");
    const results = new Array<AckResult>(f.receipts.length);
    const topic = this.#host.store.state.topicConfig().topic;
    const queue = this.#host.store.state.queueId;
    const mine = this.#receipts(group, f.receipts, results);
    // One write for the lot, each receipt in its own nested transaction.
    await this.#host.write((_s, now) => {
      this.#flushLazy();
      for (const r of mine) {
        try {
          const handle = this.#host.writeNow((s) =>
            s.consumption.changeInvisibility(group, r.ref, f.invisibleMs, now),
          );
          this.#track(group, r.ref.offset, handle, now + f.invisibleMs);
          results[r.i] = {
            receipt: encodeReceipt({ topic, group, queue, offset: r.ref.offset, handle }),
            ok: true,
          };
        } catch (e) {
          const err = coded(e);
          if (!err) throw e;
          results[r.i] = { receipt: r.receipt, error: { code: err.code, message: err.message } };
        }
      }
    });
    this.#reply(ws, { type: "invisibility", id: f.id, results });
  }

  #commit(
    ws: WebSocket,
    att: SessionAttachment,
    f: Extract<ClientFrame, { type: "commit" }>,
  ): void {
    const group = this.#consumer(att, "an offset commit");
    const max = this.#host.store.state.maxOffset();
    if (f.offset > max) {
      throw new EdgemqError("BAD_REQUEST", `offset ${f.offset} is beyond maxOffset ${max}`);
    }
    this.#queueLazy(() => {
      this.#lazyCommits.set(group, f.offset);
      return false;
    });
    if (f.id !== null) this.#reply(ws, { type: "committed", id: f.id, offset: f.offset });
  }

  // ---- lazy writes --------------------------------------------------------------------

  /** Adds a lazy write (`add` answers true when it should go now) and makes sure it is written soon. */
  #queueLazy(add: () => boolean): void {
    const now = add();
    if (now || this.#lazyTimer === null) {
      if (this.#lazyTimer !== null) clearTimeout(this.#lazyTimer);
      this.#lazyTimer = setTimeout(
        () => {
          this.#lazyTimer = null;
          this.#host
            .write(() => this.#flushLazy())
            .catch((e: unknown) => console.error("edgemq: lazy session writes failed", e));
        },
        now ? 0 : LAZY_MS,
      );
    }
  }

  /**
   * Writes the lazy acks and offset commits, inside a group of writes (the
   * caller's). Their outcome was answered already; an ack that finds its
   * receipt gone changes nothing (the message is delivered again).
   */
  #flushLazy(): void {
    if (this.#lazyTimer !== null) {
      clearTimeout(this.#lazyTimer);
      this.#lazyTimer = null;
    }
    if (this.#lazyAcks.size === 0 && this.#lazyCommits.size === 0) return;
    for (const [group, refs] of this.#lazyAcks) {
      try {
        this.#host.writeNow((s, now) => s.consumption.ack(group, refs, now));
      } catch (e) {
        console.error("edgemq: lazy ack failed", e);
      }
    }
    this.#lazyAcks.clear();
    for (const [group, offset] of this.#lazyCommits) {
      try {
        this.#host.writeNow((s, now) => s.consumption.commitOffset(group, offset, now));
      } catch (e) {
        if (!EdgemqError.from(e)) console.error("edgemq: lazy offset commit failed", e);
      }
    }
    this.#lazyCommits.clear();
  }

  /** Whether lazy writes wait (tests, and the shard before it is destroyed). */
  get lazyPending(): boolean {
    return this.#lazyAcks.size > 0 || this.#lazyCommits.size > 0;
  }

  /** Writes the lazy writes now, inside the caller's write (the shard's RPC writes piggyback this way). */
  flushLazy(): void {
    this.#flushLazy();
  }
}
