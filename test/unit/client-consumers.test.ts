import { describe, expect, it } from "vitest";
import type { Message } from "../../src/protocol/types.ts";
import type { EdgemqEvent } from "../../client/events.ts";
import { MemoryOffsetStore } from "../../client/offset-store.ts";
import { PullConsumer } from "../../client/pull-consumer.ts";
import { PushConsumer, type PushErrorDetail } from "../../client/push-consumer.ts";
import { SimpleConsumer } from "../../client/simple-consumer.ts";
import { answerError, type Call, delay, eventually, FakeTransport } from "./client-fakes.ts";

function msg(i: number, extra: Partial<Message> = {}): Message {
  return {
    msgId: `m${i}`,
    topic: "t",
    queue: 0,
    offset: i,
    body: `body ${i}`,
    encoding: "utf8",
    priority: 4,
    bornAt: 1000 + i,
    storedAt: 1000 + i,
    reconsumeTimes: 0,
    ...extra,
  };
}

/** A fake pop/ack broker: hands out what is in `ready`, records acks and nacks. */
class PopBroker {
  ready: Message[] = [];
  acked: string[] = [];
  nacked: string[] = [];
  receives = 0;
  readonly transport = new FakeTransport((c, signal) => this.#route(c, signal));

  async #route(c: Call, signal: AbortSignal | undefined): Promise<unknown> {
    const body = c.body as Record<string, unknown>;
    if (c.path.endsWith("/receive")) {
      this.receives++;
      const until = Date.now() + Math.min(Number(body.waitMs ?? 0), 50);
      while (this.ready.length === 0 && Date.now() < until) {
        if (signal?.aborted) throw signal.reason;
        await delay(2);
      }
      const out = this.ready.splice(0, Number(body.max ?? 32));
      return { messages: out.map((m) => ({ ...m, receipt: `r-${m.msgId}` })) };
    }
    const receipts = (body.receipts as string[]) ?? [];
    if (c.path.endsWith("/ack")) this.acked.push(...receipts);
    else if (c.path.endsWith("/nack")) this.nacked.push(...receipts);
    else if (c.path.endsWith("/invisibility")) return { receipt: `${String(body.receipt)}'` };
    else answerError("NOT_FOUND", c.path);
    return { results: receipts.map((receipt) => ({ receipt, ok: true })) };
  }
}

describe("SimpleConsumer", () => {
  it("receives with the configured long-poll and invisible time, and acks by receipt", async () => {
    const broker = new PopBroker();
    broker.ready = [msg(1)];
    const consumer = new SimpleConsumer({
      transport: broker.transport,
      group: "g",
      topic: "t",
      filter: "TagA || TagB",
      waitMs: 5000,
      invisibleMs: 60_000,
    });
    const [m] = await consumer.receive({ max: 10 });
    expect(broker.transport.calls[0]).toMatchObject({
      method: "POST",
      path: "/v1/groups/g/topics/t/receive",
      body: { max: 10, waitMs: 5000, invisibleMs: 60_000, filter: "TagA || TagB" },
    });
    await consumer.ack(m!);
    expect(broker.acked).toEqual(["r-m1"]);
  });

  it("throws the receipt's error when an ack fails", async () => {
    const t = new FakeTransport(() => ({
      results: [{ receipt: "r", error: { code: "RECEIPT_EXPIRED", message: "too late" } }],
    }));
    const consumer = new SimpleConsumer({ transport: t, group: "g", topic: "t" });
    await expect(consumer.ack(msg(1, { receipt: "r" }))).rejects.toMatchObject({
      code: "RECEIPT_EXPIRED",
    });
  });

  it("replaces the receipt after changeInvisibleDuration so the next ack uses the new one", async () => {
    const broker = new PopBroker();
    const consumer = new SimpleConsumer({ transport: broker.transport, group: "g", topic: "t" });
    const m = msg(1, { receipt: "r1" });
    await consumer.changeInvisibleDuration(m, 120_000);
    expect(m.receipt).toBe("r1'");
    await consumer.ack(m);
    expect(broker.acked).toEqual(["r1'"]);
  });

  it("nacks with an explicit delay", async () => {
    const broker = new PopBroker();
    const consumer = new SimpleConsumer({ transport: broker.transport, group: "g", topic: "t" });
    await consumer.nack(msg(1, { receipt: "r1" }), { delayMs: 5000 });
    expect(broker.transport.calls[0]!.body).toEqual({ receipts: ["r1"], delayMs: 5000 });
  });

  it("takes turns over several subscribed topics", async () => {
    const broker = new PopBroker();
    const consumer = new SimpleConsumer({
      transport: broker.transport,
      group: "g",
      subscriptions: { a: "*", b: "sql:amount > 10" },
      waitMs: 0,
    });
    await consumer.receive();
    await consumer.receive();
    expect(broker.transport.calls.map((c) => c.path)).toEqual([
      "/v1/groups/g/topics/a/receive",
      "/v1/groups/g/topics/b/receive",
    ]);
    expect(broker.transport.calls[1]!.body).toMatchObject({ filter: "sql:amount > 10" });
  });
});

describe("PushConsumer", () => {
  it("acks a message once its handler returns", async () => {
    const broker = new PopBroker();
    broker.ready = [msg(1), msg(2)];
    const consumer = new PushConsumer({ transport: broker.transport, group: "g", waitMs: 20 });
    const seen: string[] = [];
    consumer.subscribe("t", (m) => {
      seen.push(m.msgId);
    });
    await eventually(() => broker.acked.length === 2);
    await consumer.shutdown();
    expect(seen.sort()).toEqual(["m1", "m2"]);
    expect(broker.acked.sort()).toEqual(["r-m1", "r-m2"]);
  });

  it("nacks a message whose handler throws, for a retry later, and reports it", async () => {
    const broker = new PopBroker();
    broker.ready = [msg(1)];
    const consumer = new PushConsumer({ transport: broker.transport, group: "g", waitMs: 20 });
    const errors: PushErrorDetail[] = [];
    consumer.addEventListener("error", (e) =>
      errors.push((e as EdgemqEvent<PushErrorDetail>).detail),
    );
    consumer.subscribe("t", () => {
      throw new Error("handler failed");
    });
    await eventually(() => broker.nacked.length === 1);
    await consumer.shutdown();
    expect(broker.acked).toEqual([]);
    expect(errors[0]).toMatchObject({ stage: "handler", message: { msgId: "m1" } });
  });

  it("never runs more handlers at once than its concurrency, nor holds more messages", async () => {
    const broker = new PopBroker();
    broker.ready = Array.from({ length: 20 }, (_, i) => msg(i));
    const consumer = new PushConsumer({
      transport: broker.transport,
      group: "g",
      waitMs: 20,
      concurrency: 3,
    });
    let running = 0;
    let peak = 0;
    consumer.subscribe("t", async () => {
      running++;
      peak = Math.max(peak, running);
      await delay(5);
      running--;
    });
    await eventually(() => broker.acked.length === 20);
    await consumer.shutdown();
    expect(peak).toBe(3);
    const asked = broker.transport.callsTo(/receive$/).map((c) => (c.body as { max: number }).max);
    expect(Math.max(...asked)).toBeLessThanOrEqual(3);
  });

  it("in orderly mode runs messages with the same sharding key one at a time, in order", async () => {
    const broker = new PopBroker();
    broker.ready = [
      msg(1, { shardingKey: "a" }),
      msg(2, { shardingKey: "a" }),
      msg(3, { shardingKey: "b" }),
      msg(4, { shardingKey: "a" }),
    ];
    const consumer = new PushConsumer({
      transport: broker.transport,
      group: "g",
      waitMs: 20,
      concurrency: 8,
      orderly: true,
    });
    const log: string[] = [];
    const active = new Set<string>();
    let overlap = false;
    consumer.subscribe("t", async (m) => {
      if (active.has(m.shardingKey!)) overlap = true;
      active.add(m.shardingKey!);
      log.push(m.msgId);
      await delay(5);
      active.delete(m.shardingKey!);
    });
    await eventually(() => broker.acked.length === 4);
    await consumer.shutdown();
    expect(overlap).toBe(false);
    expect(log.filter((id) => id !== "m3")).toEqual(["m1", "m2", "m4"]);
  });

  it("in orderly mode gives back the rest of a key's messages when one fails, without handling them", async () => {
    const broker = new PopBroker();
    broker.ready = [msg(1, { shardingKey: "a" }), msg(2, { shardingKey: "a" })];
    const consumer = new PushConsumer({
      transport: broker.transport,
      group: "g",
      waitMs: 20,
      orderly: true,
    });
    consumer.addEventListener("error", () => {});
    const handled: string[] = [];
    consumer.subscribe("t", (m) => {
      handled.push(m.msgId);
      throw new Error("fail");
    });
    await eventually(() => broker.nacked.length === 2);
    await consumer.shutdown();
    expect(handled).toEqual(["m1"]);
    expect(broker.nacked).toEqual(["r-m1", "r-m2"]);
  });

  it("shutdown stops receiving, waits for handlers in flight and acks them", async () => {
    const broker = new PopBroker();
    broker.ready = [msg(1)];
    const consumer = new PushConsumer({ transport: broker.transport, group: "g", waitMs: 10_000 });
    let finished = false;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    consumer.subscribe("t", async () => {
      started();
      await delay(50);
      finished = true;
    });
    await running;
    const receivesBefore = broker.receives;
    await consumer.shutdown();
    expect(finished).toBe(true);
    expect(broker.acked).toEqual(["r-m1"]);
    await delay(30);
    expect(broker.receives).toBeLessThanOrEqual(receivesBefore + 1);
    expect(consumer.inflight).toBe(0);
  });
});

/** A fake pull broker: queues of messages by offset, committed offsets, heartbeat assignment. */
class PullBroker {
  queues: Message[][];
  committed = new Map<number, number>();
  assignment: number[];
  /** Longest a pull really waits, to keep tests fast. */
  waitCapMs = 30;
  readonly transport = new FakeTransport((c, signal) => this.#route(c, signal));

  constructor(perQueue: number[], assignment?: number[]) {
    this.queues = perQueue.map((n, q) =>
      Array.from({ length: n }, (_, i) =>
        msg(i, { queue: q, msgId: `q${q}-${i}`, storedAt: 1000 + i * 10 }),
      ),
    );
    this.assignment = assignment ?? perQueue.map((_, q) => q);
  }

  async #route(c: Call, signal: AbortSignal | undefined): Promise<unknown> {
    const url = new URL(`http://x${c.path}`);
    let m: RegExpExecArray | null;
    if (c.path.endsWith("/heartbeat"))
      return { members: ["me"], assignment: { t: this.assignment } };
    if (url.pathname === "/v1/topics/t/route") return { topic: "t", queues: this.queues.length };
    if (
      (m = /^\/v1\/groups\/g\/topics\/t\/queues\/(\d+)\/offset$/.exec(url.pathname)) &&
      c.method === "PUT"
    ) {
      this.committed.set(Number(m[1]), (c.body as { offset: number }).offset);
      return {};
    }
    if ((m = /^\/v1\/topics\/t\/queues\/(\d+)\/messages$/.exec(url.pathname))) {
      const q = Number(m[1]);
      const list = this.queues[q]!;
      const offsetParam = url.searchParams.get("offset");
      const offset = offsetParam === null ? (this.committed.get(q) ?? 0) : Number(offsetParam);
      const max = Number(url.searchParams.get("max") ?? 32);
      const waitMs = Math.min(Number(url.searchParams.get("waitMs") ?? 0), this.waitCapMs);
      const until = Date.now() + waitMs;
      while (offset >= list.length && Date.now() < until) {
        if (signal?.aborted) throw signal.reason;
        await delay(2);
      }
      const messages = list.slice(offset, offset + max);
      return {
        messages,
        nextOffset: offset + messages.length,
        minOffset: 0,
        maxOffset: list.length,
        skipped: 0,
      };
    }
    return answerError("NOT_FOUND", c.path);
  }
}

describe("PullConsumer", () => {
  it("in clustering mode reads only the queues the heartbeat assigns", async () => {
    const broker = new PullBroker([2, 2, 2], [0, 2]);
    const consumer = new PullConsumer({
      transport: broker.transport,
      group: "g",
      topic: "t",
      waitMs: 10,
    });
    const got: Message[] = [];
    for (let i = 0; i < 6 && got.length < 4; i++) got.push(...(await consumer.poll()));
    expect(consumer.assignment()).toEqual([0, 2]);
    expect(new Set(got.map((m) => m.queue))).toEqual(new Set([0, 2]));
    expect(got).toHaveLength(4);
    const heartbeat = broker.transport.callsTo(/heartbeat$/)[0]!;
    expect(heartbeat.body).toEqual({ clientId: consumer.clientId, topics: ["t"] });
    await consumer.shutdown();
  });

  it("returns a queue's messages in offset order and commits the next offset to the broker", async () => {
    const broker = new PullBroker([5], [0]);
    const consumer = new PullConsumer({
      transport: broker.transport,
      group: "g",
      topic: "t",
      max: 3,
      waitMs: 10,
    });
    const first = await consumer.poll();
    expect(first.map((m) => m.offset)).toEqual([0, 1, 2]);
    await consumer.commit();
    expect(broker.committed.get(0)).toBe(3);
    const second = await consumer.poll();
    expect(second.map((m) => m.offset)).toEqual([3, 4]);
    await consumer.shutdown();
    expect(broker.committed.get(0)).toBe(5);
  });

  it("starts a clustering queue from the group's committed offset", async () => {
    const broker = new PullBroker([5], [0]);
    broker.committed.set(0, 4);
    const consumer = new PullConsumer({
      transport: broker.transport,
      group: "g",
      topic: "t",
      waitMs: 10,
    });
    expect((await consumer.poll()).map((m) => m.offset)).toEqual([4]);
    const pull = broker.transport.callsTo(/queues\/0\/messages/)[0]!;
    expect(pull.path).toContain("group=g");
    expect(pull.path).not.toContain("offset=");
    await consumer.shutdown();
  });

  it("in broadcasting mode reads every queue and keeps offsets in its offset store", async () => {
    const broker = new PullBroker([2, 3]);
    const store = new MemoryOffsetStore();
    const options = {
      transport: broker.transport,
      group: "g",
      topic: "t",
      mode: "broadcasting" as const,
      consumeFrom: "earliest" as const,
      offsetStore: store,
      waitMs: 10,
    };
    const consumer = new PullConsumer(options);
    const got: Message[] = [];
    for (let i = 0; i < 6 && got.length < 5; i++) got.push(...(await consumer.poll()));
    expect(got).toHaveLength(5);
    await consumer.shutdown();
    expect(await store.load("g", "t")).toEqual({ 0: 2, 1: 3 });
    expect(broker.committed.size).toBe(0);
    expect(broker.transport.callsTo(/heartbeat/)).toHaveLength(0);

    broker.queues[1]!.push(msg(3, { queue: 1, msgId: "late" }));
    const again = new PullConsumer(options);
    expect((await again.poll()).map((m) => m.msgId)).toEqual(["late"]);
    await again.shutdown();
  });

  it("in broadcasting mode starts at the end of a queue with no saved offset by default", async () => {
    const broker = new PullBroker([3]);
    const consumer = new PullConsumer({
      transport: broker.transport,
      group: "g",
      topic: "t",
      mode: "broadcasting",
      waitMs: 10,
    });
    expect(await consumer.poll()).toEqual([]);
    broker.queues[0]!.push(msg(3, { msgId: "new" }));
    expect((await consumer.poll()).map((m) => m.msgId)).toEqual(["new"]);
    await consumer.shutdown();
  });

  it("seek moves a queue to an offset, backward or forward", async () => {
    const broker = new PullBroker([5], [0]);
    const consumer = new PullConsumer({
      transport: broker.transport,
      group: "g",
      topic: "t",
      waitMs: 10,
    });
    await consumer.poll();
    consumer.seek(0, 1);
    expect((await consumer.poll()).map((m) => m.offset)).toEqual([1, 2, 3, 4]);
    await consumer.shutdown();
  });

  it("seekToTimestamp moves each queue to its first message stored at or after the time", async () => {
    // Queue 0 stores at 1000, 1010, ... 1190; queue 1 at 1000..1040.
    const broker = new PullBroker([20, 5], [0, 1]);
    const consumer = new PullConsumer({
      transport: broker.transport,
      group: "g",
      topic: "t",
      waitMs: 10,
    });
    await consumer.seekToTimestamp(1075);
    expect(consumer.positions()).toEqual({ 0: 8, 1: 5 });
    await consumer.seekToTimestamp(0);
    expect(consumer.positions()).toEqual({ 0: 0, 1: 0 });
    await consumer.shutdown();
  });

  it("shutdown aborts a poll waiting for messages", async () => {
    const broker = new PullBroker([0], [0]);
    broker.waitCapMs = 10_000;
    const consumer = new PullConsumer({
      transport: broker.transport,
      group: "g",
      topic: "t",
      waitMs: 30_000,
    });
    const polling = consumer.poll().catch((e: unknown) => e);
    await delay(20);
    const started = Date.now();
    await consumer.shutdown();
    const outcome = await polling;
    expect(Date.now() - started).toBeLessThan(500);
    expect((outcome as Error).name).toBe("AbortError");
  });

  it("a poll can be aborted by its own signal", async () => {
    const broker = new PullBroker([0], [0]);
    broker.waitCapMs = 10_000;
    const consumer = new PullConsumer({
      transport: broker.transport,
      group: "g",
      topic: "t",
      waitMs: 30_000,
    });
    const ac = new AbortController();
    const polling = consumer.poll(ac.signal).catch((e: unknown) => e);
    await delay(20);
    ac.abort(new DOMException("enough", "AbortError"));
    expect(((await polling) as Error).message).toBe("enough");
    await consumer.shutdown();
  });
});

describe("consumers check with the broker's rules before anything is sent", () => {
  const BAD_FILTER = "sql:amount >";

  it("a SimpleConsumer refuses a bad subscription filter when built, as the broker would", () => {
    const broker = new PopBroker();
    const build = () =>
      new SimpleConsumer({
        transport: broker.transport,
        group: "g",
        topic: "t",
        filter: BAD_FILTER,
      });
    expect(build).toThrow(
      expect.objectContaining({ code: "BAD_REQUEST", details: { position: 12 } }),
    );
    expect(broker.transport.calls).toHaveLength(0);
  });

  it("a SimpleConsumer refuses bad receive options without a long-poll going out", async () => {
    const broker = new PopBroker();
    const consumer = new SimpleConsumer({ transport: broker.transport, group: "g", topic: "t" });
    await expect(consumer.receive({ max: 1001 })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: "max must be an integer from 1 to 1000",
    });
    await expect(consumer.receive({ invisibleMs: 10 })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(consumer.receive({ filter: "A ||" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    expect(broker.transport.calls).toHaveLength(0);
  });

  it("a PushConsumer refuses a bad filter at subscribe, before its receive loop starts", async () => {
    const broker = new PopBroker();
    const consumer = new PushConsumer({ transport: broker.transport, group: "g", waitMs: 20 });
    expect(() => consumer.subscribe("t", () => {}, { filter: BAD_FILTER })).toThrow(
      expect.objectContaining({ code: "BAD_REQUEST" }),
    );
    // The topic was not taken by the failed subscribe.
    consumer.subscribe("t", () => {}, { filter: "TagA" });
    await eventually(() => broker.receives > 0);
    await consumer.shutdown();
    expect(broker.transport.callsTo(/receive$/)[0]!.body).toMatchObject({ filter: "TagA" });
  });

  it("a PullConsumer refuses a bad filter when built", () => {
    const broker = new PopBroker();
    expect(
      () =>
        new PullConsumer({
          transport: broker.transport,
          group: "g",
          topic: "t",
          filter: BAD_FILTER,
        }),
    ).toThrow(expect.objectContaining({ code: "BAD_REQUEST" }));
    expect(broker.transport.calls).toHaveLength(0);
  });
});
