/**
 * Sessions in the runtime: real WebSockets through the gateway's upgrade
 * (`exports.default.fetch` with `Upgrade: websocket`) to real shards.
 */
import { exports } from "cloudflare:workers";
import { SESSION_PROTOCOL, tokenProtocol } from "../../src/protocol/session.ts";

export interface TestSession {
  ws: WebSocket;
  /** The next frame (parsed), optionally of a type; frames of other types before it are kept. */
  next(type?: string, timeoutMs?: number): Promise<any>;
  /** Frames received and not yet taken. */
  frames: any[];
  send(frame: unknown): void;
  sendRaw(data: string | ArrayBuffer): void;
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export interface OpenOptions {
  group?: string;
  /** Token in the subprotocol; null: none (first-frame auth). Default: the admin token. */
  token?: string | null;
  protocols?: string[];
  query?: string;
}

/** Opens a session; resolves once the handshake is done (not waiting for `ready`). */
export async function openSession(
  topic: string,
  queue: number,
  opts: OpenOptions = {},
): Promise<TestSession> {
  const token = opts.token === undefined ? "test-admin" : opts.token;
  const protocols = opts.protocols ?? [SESSION_PROTOCOL, ...(token ? [tokenProtocol(token)] : [])];
  const q = opts.query ?? (opts.group ? `?group=${opts.group}` : "");
  const res = await exports.default.fetch(
    new Request(`http://edgemq.test/v1/topics/${topic}/queues/${queue}/session${q}`, {
      headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": protocols.join(", ") },
    }),
  );
  const ws = res.webSocket;
  if (!ws) throw new Error(`no upgrade: ${res.status} ${await res.text()}`);
  ws.accept();
  const frames: any[] = [];
  let wake: (() => void) | null = null;
  let closedInfo: { code: number; reason: string } | null = null;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener("close", (e) => {
      closedInfo = { code: e.code, reason: e.reason };
      resolve(closedInfo);
      wake?.();
    });
  });
  ws.addEventListener("message", (e) => {
    frames.push(JSON.parse(String(e.data)));
    wake?.();
  });
  const session: TestSession = {
    ws,
    frames,
    async next(type, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = frames.findIndex((f) => type === undefined || f.type === type);
        if (i >= 0) return frames.splice(i, 1)[0];
        if (closedInfo)
          throw new Error(`closed ${closedInfo.code} ${closedInfo.reason} waiting for ${type}`);
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(
            `no ${type ?? "frame"} within ${timeoutMs} ms; have ${JSON.stringify(frames)}`,
          );
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, left);
        });
        wake = null;
      }
    },
    send(frame) {
      ws.send(JSON.stringify(frame));
    },
    sendRaw(data) {
      ws.send(data);
    },
    closed,
    close() {
      try {
        ws.close(1000, "done");
      } catch {
        // closed
      }
    },
  };
  return session;
}
