/**
 * Long-poll waiting that lets shards hibernate. A request held open inside a
 * Durable Object keeps it in memory and billed for the whole wait, so the
 * gateway holds the client's long-poll itself and watches the shards over
 * WebSockets they accept with the hibernation API: a shard with nothing to do
 * sleeps, and on a change (an append, a retry coming due, an ack that unblocks
 * an orderly key) it wakes, runs each watcher's check (does this pull or this
 * group's receive have something now?), notices the ones it concerns and
 * sleeps again. The gateway then asks again with an ordinary call.
 *
 * The watcher opens its sockets before its last look, so a change between
 * "nothing yet" and "watching" is never missed: it either shows in that look
 * or sends a notice.
 *
 * A wait ends early when its HTTP client is gone (the request's abort
 * signal): its sockets close and the shards forget it at once, so a client
 * that hangs up leaves no parked work behind. A shard refuses a watcher over
 * its caps (a scoped token's parked waits): that is 429 RATE_LIMITED.
 */

import { parseNotice, type WatchSpec, watchUrl } from "../broker/watch/watchers.ts";
import { EdgemqError } from "../protocol/errors.ts";
import { Limits } from "../protocol/limits.ts";

/** A shard saying a watcher's wait may be over, with its next offset to write. */
export interface ShardNotice {
  /** Index of the shard in the list given to {@link ShardWatch.open}. */
  index: number;
  maxOffset: number;
  /** The socket closed (the shard restarted): look again, expect no more notices from it. */
  closed?: boolean;
}

interface Fetcher {
  fetch(input: string, init?: RequestInit): Promise<Response>;
}

export class ShardWatch {
  readonly #sockets: WebSocket[] = [];
  #notices: ShardNotice[] = [];
  #wake: (() => void) | null = null;
  readonly #signal: AbortSignal | undefined;

  private constructor(signal: AbortSignal | undefined) {
    this.#signal = signal;
  }

  /**
   * Opens one watching socket per shard stub (in parallel), each waiting for
   * `spec` on behalf of `sender` (a scoped token's subject, null for the
   * admin space); `signal` is the client's request, whose abort ends the wait.
   */
  static async open(
    shards: Fetcher[],
    spec: WatchSpec,
    sender: string | null = null,
    signal?: AbortSignal,
  ): Promise<ShardWatch> {
    const watch = new ShardWatch(signal);
    const url = watchUrl(spec, sender);
    // Settled, not raced: a socket still opening when another shard refused must close too.
    const opened = await Promise.allSettled(shards.map((s, i) => watch.#connect(s, i, url)));
    const failed = opened.find((o) => o.status === "rejected");
    if (failed) {
      watch.close();
      throw failed.reason;
    }
    return watch;
  }

  async #connect(shard: Fetcher, index: number, url: string): Promise<void> {
    const res = await shard.fetch(url, { headers: { Upgrade: "websocket" } });
    const ws = res.webSocket;
    if (res.status === 429) {
      throw new EdgemqError("RATE_LIMITED", `too many long-polls parked: ${await res.text()}`, {
        retryAfterSeconds:
          Number(res.headers.get("Retry-After")) || Limits.parkedWaitRetryAfterSeconds,
      });
    }
    if (!ws) throw new Error(`shard refused a watcher: HTTP ${res.status}`);
    ws.accept();
    this.#sockets.push(ws);
    // Anything a shard sends is a reason to look again; a notice also says how far its log goes.
    ws.addEventListener("message", (e) => this.#push({ index, maxOffset: parseNotice(e.data) }));
    ws.addEventListener("close", () => this.#push({ index, maxOffset: Number.NaN, closed: true }));
    ws.addEventListener("error", () => this.#push({ index, maxOffset: Number.NaN, closed: true }));
  }

  #push(n: ShardNotice): void {
    this.#notices.push(n);
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /**
   * The next notice that `wanted` accepts (default: any), or null after
   * `timeoutMs` or once the client is gone. Notices that arrived since the
   * last call count; unwanted ones are dropped. A `closed` notice is always
   * returned.
   */
  async next(
    timeoutMs: number,
    wanted: (n: ShardNotice) => boolean = () => true,
  ): Promise<ShardNotice | null> {
    const deadline = Date.now() + timeoutMs;
    const signal = this.#signal;
    const abort = () => this.#wake?.();
    signal?.addEventListener("abort", abort);
    try {
      return await this.#next(deadline, wanted);
    } finally {
      signal?.removeEventListener("abort", abort);
    }
  }

  async #next(deadline: number, wanted: (n: ShardNotice) => boolean): Promise<ShardNotice | null> {
    for (;;) {
      if (this.#signal?.aborted) return null;
      while (this.#notices.length) {
        const n = this.#notices.shift()!;
        if (n.closed || wanted(n)) return n;
      }
      const left = deadline - Date.now();
      if (left <= 0) return null;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = null;
    }
  }

  /** Closes every socket; the shards forget the watcher. */
  close(): void {
    for (const ws of this.#sockets) {
      try {
        ws.close(1000, "done");
      } catch {
        // already closed
      }
    }
    this.#sockets.length = 0;
  }
}
