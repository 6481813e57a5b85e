/**
 * One streaming session (docs/protocol.md): a WebSocket from this client
 * straight to one queue's shard, with request/answer correlation by frame
 * id, pushes handed to the owner, keep-alive pings (answered by the runtime
 * without waking the shard), and reconnection with backoff while the owner
 * still wants it. On every (re)connect the owner's `onReady` runs, so it can
 * subscribe again and resend what was not answered.
 *
 * Sessions open where a WebSocket exists: browsers, Node >= 22, Deno (the
 * global `WebSocket`), and Workers through a Service Binding's `fetch`
 * upgrade. Elsewhere the SDK speaks HTTP as before.
 */
import { EdgemqError } from "../src/protocol/errors.ts";
import {
  PING_FRAME,
  type ReadyLimits,
  SESSION_PROTOCOL,
  type ServerFrame,
  SessionClose,
  parseServerFrame,
  sessionPath,
  tokenProtocol,
} from "../src/protocol/session.ts";
import { backoffDelay, type BackoffOptions } from "./backoff.ts";
import { networkError, type TokenSource } from "./transport.ts";

/** The part of a WebSocket a session uses (the browser's, Node's, Deno's, or a Worker's). */
export interface SessionSocket {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
}

/** Opens a socket to a session path with the given subprotocols; resolves once it is open. */
export type SocketOpener = (path: string, protocols: string[]) => Promise<SessionSocket>;

/** A `ready` frame. */
export type ReadyFrame = Extract<ServerFrame, { type: "ready" }>;

/** Whether this runtime has a WebSocket client (browsers, Node >= 22, Deno, Workers). */
export function hasWebSocket(): boolean {
  return typeof (globalThis as { WebSocket?: unknown }).WebSocket === "function";
}

/** Opens sessions with the global WebSocket against an HTTP(S) endpoint; undefined where there is none. */
export function webSocketOpener(endpoint: string): SocketOpener | undefined {
  if (!hasWebSocket()) return undefined;
  const base = endpoint.replace(/\/+$/, "").replace(/^http(s?):/i, "ws$1:");
  return (path, protocols) =>
    new Promise<SessionSocket>((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(base + path, protocols);
      } catch (e) {
        reject(networkError(e, "cannot open a session"));
        return;
      }
      // A handshake that hangs (a server still starting, a black hole) fails in time.
      const timer = unref(
        setTimeout(() => {
          ws.removeEventListener("close", onClose);
          try {
            ws.close();
          } catch {
            // not open
          }
          reject(networkError(new Error("no handshake in time"), "cannot open a session"));
        }, HANDSHAKE_TIMEOUT_MS),
      );
      const onOpen = () => {
        clearTimeout(timer);
        ws.removeEventListener("close", onClose);
        resolve(ws);
      };
      const onClose = (e: CloseEvent) => {
        clearTimeout(timer);
        reject(networkError(new Error(`closed ${e.code} before open`), "cannot open a session"));
      };
      ws.addEventListener("open", onOpen, { once: true });
      ws.addEventListener("close", onClose, { once: true });
    });
}

/** A Service Binding (or any fetcher) whose `fetch` answers a WebSocket upgrade (Workers). */
export interface UpgradeFetcher {
  fetch(request: Request): Promise<Response>;
}

/** Opens sessions through a Service Binding's `fetch` upgrade (a Worker calling the broker Worker). */
export function fetchOpener(fetcher: UpgradeFetcher): SocketOpener {
  return async (path, protocols) => {
    let res: Response;
    try {
      res = await fetcher.fetch(
        new Request(`https://edgemq.internal${path}`, {
          headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": protocols.join(", ") },
        }),
      );
    } catch (e) {
      throw networkError(e, "cannot open a session");
    }
    const ws = (res as Response & { webSocket?: (SessionSocket & { accept(): void }) | null })
      .webSocket;
    if (!ws) throw networkError(new Error(`HTTP ${res.status}`), "the broker refused a session");
    ws.accept();
    return ws;
  };
}

/** How a client class chooses sessions (see {@link sessionSetup}). */
export interface SessionOptions {
  /**
   * Streaming sessions (docs/protocol.md): one WebSocket per queue, straight
   * to its shard. Default true wherever a WebSocket exists (browsers, Node
   * >= 22, Deno; Workers through a Service Binding with `fetch`); `false`
   * speaks HTTP only.
   */
  sessions?: boolean;
  /** Opens session sockets another way (a custom runtime, tests). */
  sessionOpener?: SocketOpener;
}

/** The opener and token a connection's sessions use, or undefined: HTTP only. */
export function sessionSetup(
  options: SessionOptions & {
    endpoint?: string;
    token?: TokenSource;
    binding?: unknown;
    transport?: unknown;
  },
): SessionSetup | undefined {
  if (options.sessions === false) return undefined;
  const tokenKey = keyOf(options.token);
  if (options.sessionOpener) {
    return {
      opener: options.sessionOpener,
      key: `o${keyOf(options.sessionOpener)}\u0000${tokenKey}`,
      ...(options.token !== undefined && { token: options.token }),
    };
  }
  if (options.transport) return undefined;
  if (options.binding) {
    const b = options.binding as { fetch?: unknown };
    if (typeof b.fetch !== "function") return undefined;
    return { opener: fetchOpener(b as UpgradeFetcher), key: `b${keyOf(options.binding)}` };
  }
  if (typeof options.endpoint !== "string") return undefined;
  const opener = webSocketOpener(options.endpoint);
  if (!opener) return undefined;
  return {
    opener,
    key: `e${options.endpoint.replace(/\/+$/, "")}\u0000${tokenKey}`,
    ...(options.token !== undefined && { token: options.token }),
  };
}

/** How a client reaches the broker's sessions, and which clients may share them (same `key`). */
export interface SessionSetup {
  opener: SocketOpener;
  token?: TokenSource;
  /** Same broker, same token (or token function): sessions may be shared. */
  key: string;
}

const ids = new WeakMap<object, number>();
let nextId = 1;

/** A key for a token (its text) or an object (its identity). */
function keyOf(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return `s${v}`;
  if (typeof v === "object" || typeof v === "function") {
    let id = ids.get(v as object);
    if (id === undefined) ids.set(v as object, (id = nextId++));
    return `#${id}`;
  }
  return String(v);
}

/** Close codes after which reconnecting as is cannot help (the owner is told, and decides). */
const REFUSALS = new Set<number>([
  SessionClose.PROTOCOL_VIOLATION,
  SessionClose.BAD_REQUEST,
  SessionClose.UNAUTHORIZED,
  SessionClose.FORBIDDEN,
  SessionClose.NOT_FOUND,
]);

/** Longest wait for the handshake, and then for the `ready` frame. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Keep-alive: a ping after this long without a frame; the session counts as lost after PING_LOST_MS. */
const PING_AFTER_MS = 25_000;
const PING_LOST_MS = 60_000;

export interface QueueSessionOptions {
  opener: SocketOpener;
  token?: TokenSource;
  topic: string;
  queue: number;
  group?: string;
  /** Reconnect spacing. Default 100 ms doubling to 5 s. */
  backoff?: BackoffOptions;
  /** Pushed messages. */
  onMessages?(frame: Extract<ServerFrame, { type: "messages" }>): void;
  /** The topic's queue count changed (a `route` frame). */
  onRoute?(queues: number): void;
  /** Runs on every (re)connect, before queued requests go out. */
  onReady?(ready: ReadyFrame): void;
  /** The connection was lost or refused (`error` says why); pending requests are rejected with it. */
  onLost?(error: EdgemqError): void;
}

interface Pending {
  resolve(frame: ServerFrame): void;
  reject(error: unknown): void;
}

/**
 * The error a session frame carries, as the HTTP transport would give it:
 * `details.httpStatus` is the status its code is answered with over HTTP, so
 * retry decisions read the same either way.
 */
export function sessionError(body: {
  code: string;
  message: string;
  [k: string]: unknown;
}): EdgemqError {
  const e =
    EdgemqError.from({ error: body }) ??
    new EdgemqError("INTERNAL", String(body?.message ?? "error"));
  return new EdgemqError(e.code, e.message, { ...e.details, httpStatus: e.status });
}

/** Unrefs a Node timer so a session never keeps a process alive on its own timers. */
function unref(t: ReturnType<typeof setTimeout>): ReturnType<typeof setTimeout> {
  (t as unknown as { unref?: () => void }).unref?.();
  return t;
}

/** A session to one queue; see the module notes. */
export class QueueSession {
  readonly topic: string;
  readonly queue: number;
  readonly group: string | undefined;
  readonly #o: QueueSessionOptions;
  #ws: SessionSocket | null = null;
  #ready: ReadyFrame | null = null;
  #connecting: Promise<ReadyFrame> | null = null;
  #readyWaiters: { resolve(r: ReadyFrame): void; reject(e: unknown): void }[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #holds = 0;
  #closed = false;
  #attempt = 0;
  #everReady = false;
  #lastFrameAt = 0;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The last refusal (an error frame before a close), for the owner. */
  #refusal: EdgemqError | null = null;

  constructor(options: QueueSessionOptions) {
    this.#o = options;
    this.topic = options.topic;
    this.queue = options.queue;
    this.group = options.group;
  }

  /** The current `ready` frame, or null while not connected. */
  get readyFrame(): ReadyFrame | null {
    return this.#ready;
  }

  /** Whether a session to this broker was ever ready (false: sessions may not be offered at all). */
  get everReady(): boolean {
    return this.#everReady;
  }

  get limits(): ReadyLimits | undefined {
    return this.#ready?.limits;
  }

  /** Keeps the session open (and reconnecting) until the matching {@link release}. */
  hold(): void {
    this.#holds++;
    if (!this.#ready && !this.#connecting) {
      this.connect().catch(() => this.#scheduleReconnect(false));
    }
  }

  release(): void {
    this.#holds = Math.max(0, this.#holds - 1);
  }

  /** Resolves once ready, connecting if needed; rejects with a refusal or a network error. */
  connect(): Promise<ReadyFrame> {
    if (this.#closed)
      return Promise.reject(new EdgemqError("BAD_REQUEST", "the session is closed"));
    if (this.#ready) return Promise.resolve(this.#ready);
    if (!this.#connecting) {
      if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
      this.#connecting = this.#open().finally(() => (this.#connecting = null));
    }
    return this.#connecting;
  }

  async #open(): Promise<ReadyFrame> {
    const token = typeof this.#o.token === "function" ? await this.#o.token() : this.#o.token;
    const protocols = [SESSION_PROTOCOL, ...(token ? [tokenProtocol(token)] : [])];
    const ws = await this.#o.opener(sessionPath(this.topic, this.queue, this.group), protocols);
    if (this.#closed) {
      ws.close(1000, "closed");
      throw new EdgemqError("BAD_REQUEST", "the session is closed");
    }
    this.#ws = ws;
    this.#refusal = null;
    this.#lastFrameAt = Date.now();
    const readyTimer = unref(
      setTimeout(() => {
        if (this.#ws === ws && !this.#ready) {
          this.#lost(ws, 1006, "no ready frame in time");
          try {
            ws.close(1000, "no ready frame");
          } catch {
            // closed
          }
        }
      }, HANDSHAKE_TIMEOUT_MS),
    );
    return new Promise<ReadyFrame>((resolve, reject) => {
      this.#readyWaiters.push({
        resolve: (r) => {
          clearTimeout(readyTimer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(readyTimer);
          reject(e);
        },
      });
      ws.addEventListener("message", (e: { data: unknown }) => this.#frame(ws, e.data));
      ws.addEventListener("close", (e: { code: number; reason: string }) =>
        this.#lost(ws, e.code, e.reason),
      );
      ws.addEventListener("error", () => {
        // A close event follows.
      });
    });
  }

  #frame(ws: SessionSocket, data: unknown): void {
    if (ws !== this.#ws) return;
    this.#lastFrameAt = Date.now();
    const f = parseServerFrame(data);
    if (!f) return;
    switch (f.type) {
      case "ready": {
        this.#ready = f;
        this.#everReady = true;
        this.#attempt = 0;
        this.#startKeepAlive();
        try {
          this.#o.onReady?.(f);
        } finally {
          for (const w of this.#readyWaiters.splice(0)) w.resolve(f);
        }
        return;
      }
      case "messages":
        this.#o.onMessages?.(f);
        return;
      case "route":
        this.#o.onRoute?.(f.queues);
        return;
      case "pong":
        return;
      case "error": {
        const err = sessionError(f.error);
        if (f.id !== null && this.#pending.has(f.id)) {
          const p = this.#pending.get(f.id)!;
          this.#pending.delete(f.id);
          p.reject(err);
        } else if (!this.#ready) {
          // An error before ready is the refusal that its close carries.
          this.#refusal = err;
        }
        return;
      }
      default: {
        const id = (f as { id?: number }).id;
        if (typeof id === "number") {
          const p = this.#pending.get(id);
          if (p) {
            this.#pending.delete(id);
            p.resolve(f);
          }
        }
      }
    }
  }

  #startKeepAlive(): void {
    if (this.#keepAlive !== undefined) return;
    this.#keepAlive = setInterval(() => {
      const ws = this.#ws;
      if (!ws || !this.#ready) return;
      const quiet = Date.now() - this.#lastFrameAt;
      if (quiet > PING_LOST_MS) {
        this.#lost(ws, 1006, "no pong");
        try {
          ws.close(1000, "no pong");
        } catch {
          // closed
        }
      } else if (quiet > PING_AFTER_MS) {
        try {
          ws.send(PING_FRAME);
        } catch {
          // a close event follows
        }
      }
    }, PING_AFTER_MS / 2);
    unref(this.#keepAlive);
  }

  #lost(ws: SessionSocket, code: number, reason: string): void {
    if (ws !== this.#ws) return;
    this.#ws = null;
    this.#ready = null;
    if (this.#keepAlive !== undefined) clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
    const refused = REFUSALS.has(code);
    const error =
      this.#refusal ??
      (refused
        ? new EdgemqError(
            code === SessionClose.UNAUTHORIZED
              ? "UNAUTHORIZED"
              : code === SessionClose.FORBIDDEN
                ? "FORBIDDEN"
                : code === SessionClose.NOT_FOUND
                  ? "NOT_FOUND"
                  : "BAD_REQUEST",
            `session closed ${code}: ${reason}`,
            { closeCode: code },
          )
        : new EdgemqError("UNAVAILABLE", `session lost (${code}${reason ? ` ${reason}` : ""})`, {
            network: true,
            closeCode: code,
          }));
    for (const w of this.#readyWaiters.splice(0)) w.reject(error);
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(error);
    this.#o.onLost?.(error);
    // Token expired: straight back with a fresh one; otherwise back off.
    this.#scheduleReconnect(code === SessionClose.TOKEN_EXPIRED);
  }

  /** Reconnects after a delay while the owner holds the session. */
  #scheduleReconnect(immediate: boolean): void {
    if (this.#closed || this.#holds === 0 || this.#retryTimer !== undefined) return;
    const delay = immediate
      ? 0
      : backoffDelay(this.#attempt++, Math.random(), {
          baseMs: 100,
          maxMs: 5000,
          ...this.#o.backoff,
        });
    this.#retryTimer = unref(
      setTimeout(() => {
        this.#retryTimer = undefined;
        if (this.#closed || this.#holds === 0 || this.#ready || this.#connecting) return;
        this.connect().catch(() => this.#scheduleReconnect(false));
      }, delay),
    );
  }

  /**
   * Sends a frame with a fresh id once ready and resolves with the answer
   * carrying that id; rejects with the error frame's error, or with the
   * session's loss (the owner decides whether to resend).
   */
  async request<T extends ServerFrame>(frame: { type: string; [k: string]: unknown }): Promise<T> {
    if (!this.#ready) await this.connect();
    const ws = this.#ws;
    if (!ws) throw new EdgemqError("UNAVAILABLE", "session lost", { network: true });
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (f: ServerFrame) => void, reject });
      try {
        ws.send(JSON.stringify({ ...frame, id }));
      } catch (e) {
        this.#pending.delete(id);
        reject(networkError(e, "session send failed"));
      }
    });
  }

  /** Sends a frame that needs no answer when connected; false when not (the caller decides). */
  post(frame: { type: string; [k: string]: unknown }): boolean {
    if (!this.#ready || !this.#ws) return false;
    try {
      this.#ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Requests answered yet to come. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Closes for good; pending requests are rejected. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    const ws = this.#ws;
    if (ws) {
      this.#lost(ws, SessionClose.NORMAL, "closed");
      try {
        ws.close(SessionClose.NORMAL, "closed");
      } catch {
        // closed already
      }
    }
    for (const w of this.#readyWaiters.splice(0))
      w.reject(new EdgemqError("BAD_REQUEST", "the session is closed"));
  }

  /** Closes the socket but keeps the session usable: the next request reconnects. */
  idle(): void {
    const ws = this.#ws;
    if (!ws || this.#holds > 0 || this.#pending.size > 0) return;
    this.#lost(ws, SessionClose.NORMAL, "idle");
    try {
      ws.close(SessionClose.NORMAL, "idle");
    } catch {
      // closed already
    }
  }
}
