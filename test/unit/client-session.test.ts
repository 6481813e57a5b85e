/**
 * The SDK's session producer against a scripted socket (the `sessionOpener`
 * option): adaptive batching (a send goes out at once when nothing is in
 * flight, otherwise with the next frame), client-side routing with the
 * gateway's hash, and the resend of unanswered sends with the same msgIds
 * after a lost session. The real broker is under test in
 * test/node/session-sdk.test.ts; this pins the timing rules exactly.
 */
import { describe, expect, it } from "vitest";
import { Producer } from "../../client/index.ts";
import type { SessionSocket, SocketOpener } from "../../client/session.ts";
import { queueFor } from "../../src/protocol/routing.ts";

interface Sent {
  socket: FakeSocket;
  frame: { type: string; id: number; messages: { msgId: string; body: string }[] };
}

class FakeSocket implements SessionSocket {
  readonly listeners = new Map<string, ((e: any) => void)[]>();
  closed = false;
  readonly path: string;
  readonly sent: Sent[];
  constructor(path: string, sent: Sent[]) {
    this.path = path;
    this.sent = sent;
  }
  send(data: string): void {
    if (this.closed) return;
    this.sent.push({ socket: this, frame: JSON.parse(data) });
  }
  close(): void {
    this.drop(1000);
  }
  addEventListener(type: string, listener: (e: any) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  emit(type: string, e: unknown): void {
    for (const l of this.listeners.get(type) ?? []) l(e);
  }
  /** The shard's side: a frame to the client. */
  push(frame: unknown): void {
    this.emit("message", { data: JSON.stringify(frame) });
  }
  drop(code = 1006): void {
    if (this.closed) return;
    this.closed = true;
    this.emit("close", { code, reason: "" });
  }
  /** Answers a send frame: every message stored, offsets from `at`. */
  answer(frame: Sent["frame"], queue: number, at = 0): void {
    this.push({
      type: "sent",
      id: frame.id,
      results: frame.messages.map((m, i) => ({
        msgId: m.msgId,
        queue,
        offset: at + i,
        storedAt: 1,
        status: "stored",
      })),
    });
  }
}

const LIMITS = {
  maxClientFrameBytes: 1024 * 1024,
  maxPushFrameBytes: 8 * 1024 * 1024,
  maxFrameItems: 1000,
  maxInflightSends: 16,
  maxCredit: 10000,
  maxFilterChars: 1500,
};

/** A broker of scripted sockets: each open says ready at once. */
function fakeBroker(queues: number) {
  const sockets: FakeSocket[] = [];
  const sent: Sent[] = [];
  const opener: SocketOpener = async (path) => {
    const s = new FakeSocket(path, sent);
    sockets.push(s);
    const queue = Number(/queues\/(\d+)\//.exec(path)![1]);
    // As a real socket: frames arrive as later tasks, after the open.
    setTimeout(
      () =>
        s.push({
          type: "ready",
          v: 1,
          session: `s${sockets.length}`,
          topic: "t",
          queue,
          queues,
          group: null,
          maxOffset: 0,
          expiresAt: null,
          publish: true,
          consume: true,
          limits: LIMITS,
        }),
      0,
    );
    return s;
  };
  // The route comes over the transport; nothing else may.
  const transport = {
    request: async (method: string, path: string) => {
      if (method === "GET" && path === "/v1/topics/t/route") return { topic: "t", queues };
      throw new Error(`unexpected HTTP ${method} ${path}`);
    },
  };
  return { sockets, sent, opener, transport };
}

const tick = () => new Promise((r) => setTimeout(r, 0));
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await tick();
  expect(cond()).toBe(true);
}

describe("session producer", () => {
  it("sends at once when nothing is in flight, and batches what comes meanwhile into the next frame", async () => {
    const b = fakeBroker(1);
    const producer = new Producer({ transport: b.transport, sessionOpener: b.opener });
    const first = producer.send({ topic: "t", body: "1" });
    await until(() => b.sent.length === 1);
    expect(b.sent[0]!.frame.messages.map((m) => m.body)).toEqual(["1"]);
    // In flight: these wait, with no timer, for the answer.
    const more = ["2", "3", "4"].map((body) => producer.send({ topic: "t", body }));
    for (let i = 0; i < 20; i++) await tick();
    expect(b.sent).toHaveLength(1);
    b.sockets[0]!.answer(b.sent[0]!.frame, 0, 0);
    expect((await first).status).toBe("stored");
    await until(() => b.sent.length === 2);
    expect(b.sent[1]!.frame.messages.map((m) => m.body)).toEqual(["2", "3", "4"]);
    b.sockets[0]!.answer(b.sent[1]!.frame, 0, 1);
    expect((await Promise.all(more)).map((r) => (r as { offset: number }).offset)).toEqual([
      1, 2, 3,
    ]);
    producer.close().catch(() => {});
  });

  it("routes each message to the queue the gateway's hash gives its sharding key or msgId", async () => {
    const b = fakeBroker(4);
    const producer = new Producer({ transport: b.transport, sessionOpener: b.opener });
    const sends = [
      producer.send({ topic: "t", body: "k", shardingKey: "user-42" }),
      producer.send({ topic: "t", body: "m", msgId: "fixed-id" }),
    ];
    await until(() => b.sent.length === 2);
    const queueOf = (body: string) =>
      Number(
        /queues\/(\d+)\//.exec(
          b.sent.find((s) => s.frame.messages[0]!.body === body)!.socket.path,
        )![1],
      );
    expect(queueOf("k")).toBe(queueFor("user-42", 4));
    expect(queueOf("m")).toBe(queueFor("fixed-id", 4));
    for (const s of b.sent) s.socket.answer(s.frame, queueOf(s.frame.messages[0]!.body));
    await Promise.all(sends);
    producer.close().catch(() => {});
  });

  it("resends an unanswered frame with the same msgIds, first, once the session is back", async () => {
    const b = fakeBroker(1);
    const producer = new Producer({
      transport: b.transport,
      sessionOpener: b.opener,
      retry: { baseMs: 1, maxMs: 2 },
    });
    const a = producer.send({ topic: "t", body: "a" });
    await until(() => b.sent.length === 1);
    const lostIds = b.sent[0]!.frame.messages.map((m) => m.msgId);
    const later = producer.send({ topic: "t", body: "b" });
    b.sockets[0]!.drop(); // the answer never came
    await until(() => b.sockets.length === 2 && b.sent.length === 2);
    // The lost frame goes again first, with the same msgId (dedup makes it
    // exactly-once); what waited meanwhile rides along behind it.
    const resent = b.sent[1]!;
    expect(resent.socket).toBe(b.sockets[1]);
    expect(resent.frame.messages.map((m) => m.msgId).slice(0, 1)).toEqual(lostIds);
    expect(resent.frame.messages.map((m) => m.body)).toEqual(["a", "b"]);
    b.sockets[1]!.answer(resent.frame, 0, 0);
    expect((await a).msgId).toBe(lostIds[0]);
    expect((await later).status).toBe("stored");
    producer.close().catch(() => {});
  });
});
