import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { EdgemqError } from "../../src/protocol/errors.ts";
import type { MessageInput } from "../../src/protocol/types.ts";
import type { EdgemqEvent } from "../../client/events.ts";
import type { OutboxErrorDetail, OutboxOptions } from "../../client/outbox.ts";
import { Producer } from "../../client/producer.ts";
import { answerError, eventually, FakeBroker, FakeTransport, networkDown } from "./client-fakes.ts";

let dbCounter = 0;
const freshName = () => `outbox-test-${Date.now()}-${dbCounter++}`;

/** A network switch: `up` decides both navigator.onLine and whether calls get through. */
class Network {
  up = true;
  readonly events = new EventTarget();
  goOnline() {
    this.up = true;
    this.events.dispatchEvent(new Event("online"));
  }
}

function setup(
  options: { name?: string; network?: Network; broker?: FakeBroker; outbox?: OutboxOptions } = {},
) {
  const network = options.network ?? new Network();
  const broker = options.broker ?? new FakeBroker();
  const transport = new FakeTransport((c) => {
    if (!network.up) networkDown();
    return broker.handle(c);
  });
  const name = options.name ?? freshName();
  const producer = new Producer({
    transport,
    retry: { baseMs: 1, random: () => 0 },
    outbox: {
      name,
      onlineEvents: network.events,
      isOnline: () => network.up,
      backoff: { baseMs: 10, maxMs: 40 },
      ...options.outbox,
    },
  });
  return { producer, outbox: producer.outbox!, transport, broker, network, name };
}

function nextEvent<T>(target: EventTarget, type: string): Promise<T> {
  return new Promise((resolve) =>
    target.addEventListener(type, (e) => resolve((e as EdgemqEvent<T>).detail), { once: true }),
  );
}

describe("Outbox", () => {
  it("writes a message to IndexedDB before any network call", async () => {
    const broker = new FakeBroker();
    const seen: number[] = [];
    const { producer, transport, outbox } = setup({ broker });
    transport.route = async (c) => {
      seen.push(await outbox.pending());
      return broker.handle(c);
    };
    const result = await producer.send({ topic: "t", body: "x" });
    expect(result.status).toBe("stored");
    expect(seen).toEqual([1]);
    expect(await outbox.pending()).toBe(0);
    await producer.close();
  });

  it("resolves queued while offline, without touching the network", async () => {
    const network = new Network();
    network.up = false;
    const { producer, outbox, transport } = setup({ network });
    const queued: string[] = [];
    outbox.addEventListener("queued", (e) =>
      queued.push((e as EdgemqEvent<{ msgId: string }>).detail.msgId),
    );
    const results = await Promise.all(
      ["1", "2", "3"].map((body) => producer.send({ topic: "t", body })),
    );
    expect(results.map((r) => r.status)).toEqual(["queued", "queued", "queued"]);
    expect(results.map((r) => r.msgId)).toEqual(queued);
    expect(transport.calls).toHaveLength(0);
    expect(await outbox.pending()).toBe(3);
    await producer.close();
  });

  it("resolves queued when the request fails with a network error, and keeps the message", async () => {
    const network = new Network();
    const { producer, outbox, transport } = setup({ network });
    transport.route = () => networkDown();
    const result = await producer.send({ topic: "t", body: "x" });
    expect(result).toEqual({ status: "queued", msgId: result.msgId });
    expect(await outbox.pending()).toBe(1);
    await producer.close();
  });

  it("drains in send order per sharding key when the online event fires", async () => {
    const network = new Network();
    network.up = false;
    const { producer, outbox, broker } = setup({ network });
    const bodies = ["a1", "b1", "a2", "b2", "a3", "c1", "b3"];
    for (const body of bodies) await producer.send({ topic: "t", body, shardingKey: body[0]! });
    expect(broker.stored).toHaveLength(0);
    const drained = nextEvent(outbox, "drained");
    network.goOnline();
    await drained;
    const byKey = (k: string) =>
      broker.stored.filter((s) => s.message.shardingKey === k).map((s) => s.message.body);
    expect(byKey("a")).toEqual(["a1", "a2", "a3"]);
    expect(byKey("b")).toEqual(["b1", "b2", "b3"]);
    expect(broker.bodies()).toEqual(bodies);
    expect(await outbox.pending()).toBe(0);
    await producer.close();
  });

  it("emits sent for each message and drained once empty", async () => {
    const network = new Network();
    network.up = false;
    const { producer, outbox } = setup({ network });
    await producer.send({ topic: "t", body: "1" });
    await producer.send({ topic: "t", body: "2" });
    const sent: string[] = [];
    outbox.addEventListener("sent", (e) =>
      sent.push((e as EdgemqEvent<{ msgId: string }>).detail.msgId),
    );
    const drained = nextEvent<{ sent: number }>(outbox, "drained");
    network.goOnline();
    expect((await drained).sent).toBe(2);
    expect(sent).toHaveLength(2);
    await producer.close();
  });

  it("survives a new Producer on the same database: the next page load sends what was left", async () => {
    const name = freshName();
    const offline = new Network();
    offline.up = false;
    const first = setup({ name, network: offline });
    for (const body of ["1", "2", "3"])
      await first.producer.send({ topic: "t", body, shardingKey: "k" });
    await first.producer.close();

    const broker = new FakeBroker();
    const second = setup({ name, broker });
    await nextEvent(second.outbox, "drained");
    expect(broker.bodies()).toEqual(["1", "2", "3"]);
    expect(await second.outbox.pending()).toBe(0);
    await second.producer.close();
  });

  it("is bounded: a send into a full outbox is rejected with QUEUE_FULL and nothing is dropped", async () => {
    const network = new Network();
    network.up = false;
    const { producer, outbox } = setup({ network, outbox: { maxMessages: 2 } });
    await producer.send({ topic: "t", body: "1" });
    await producer.send({ topic: "t", body: "2" });
    const err = await producer.send({ topic: "t", body: "3" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EdgemqError);
    expect((err as EdgemqError).code).toBe("QUEUE_FULL");
    expect((await outbox.list()).map((r) => r.message.body)).toEqual(["1", "2"]);
    await producer.close();
  });

  it("with overflow drop-oldest, evicts the oldest message and reports it in an error event", async () => {
    const network = new Network();
    network.up = false;
    const { producer, outbox } = setup({
      network,
      outbox: { maxMessages: 2, overflow: "drop-oldest" },
    });
    const errors: OutboxErrorDetail[] = [];
    outbox.addEventListener("error", (e) =>
      errors.push((e as EdgemqEvent<OutboxErrorDetail>).detail),
    );
    const first = await producer.send({ topic: "t", body: "1" });
    await producer.send({ topic: "t", body: "2" });
    await producer.send({ topic: "t", body: "3" });
    expect((await outbox.list()).map((r) => r.message.body)).toEqual(["2", "3"]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ kept: false, msgId: first.msgId });
    await producer.close();
  });

  it("drops a message the broker refuses with a 4xx, reports it, and still sends the rest", async () => {
    const network = new Network();
    network.up = false;
    const broker = new FakeBroker();
    const { producer, outbox, transport } = setup({ network, broker });
    transport.route = (c) => {
      if (!network.up) networkDown();
      const messages = (c.body as { messages: MessageInput[] }).messages;
      const bad = messages.findIndex((m) => m.body === "bad");
      if (bad >= 0) answerError("BAD_REQUEST", `messages[${bad}]: nope`, { index: bad });
      return broker.handle(c);
    };
    for (const body of ["ok1", "bad", "ok2"]) await producer.send({ topic: "t", body });
    const error = nextEvent<OutboxErrorDetail>(outbox, "error");
    const drained = nextEvent(outbox, "drained");
    network.goOnline();
    const detail = await error;
    expect(detail.kept).toBe(false);
    expect((detail.error as EdgemqError).code).toBe("BAD_REQUEST");
    expect(detail.message?.body).toBe("bad");
    await drained;
    expect(broker.bodies()).toEqual(["ok1", "ok2"]);
    expect(await outbox.pending()).toBe(0);
    await producer.close();
  });

  it("rejects the send of a message the broker refuses for good", async () => {
    const { producer, outbox, transport } = setup();
    transport.route = () => answerError("TOPIC_NOT_FOUND", "no topic");
    await expect(producer.send({ topic: "t", body: "x" })).rejects.toMatchObject({
      code: "TOPIC_NOT_FOUND",
    });
    expect(await outbox.pending()).toBe(0);
    await producer.close();
  });

  it("keeps messages through 5xx answers and retries them with backoff", async () => {
    const broker = new FakeBroker();
    const { producer, outbox, transport } = setup({ broker });
    let failures = 2;
    transport.route = (c) => {
      if (failures-- > 0) answerError("UNAVAILABLE", "restarting");
      return broker.handle(c);
    };
    const result = await producer.send({ topic: "t", body: "x" });
    expect(result.status).toBe("queued");
    await eventually(async () => (await outbox.pending()) === 0);
    expect(broker.bodies()).toEqual(["x"]);
    expect(transport.calls).toHaveLength(3);
    await producer.close();
  });

  it("keeps messages on 401 and 403, since a refreshed token may let them through", async () => {
    const { producer, outbox, transport } = setup();
    transport.route = () => answerError("UNAUTHORIZED", "token expired");
    expect((await producer.send({ topic: "t", body: "x" })).status).toBe("queued");
    expect(await outbox.pending()).toBe(1);
    await producer.close();
  });

  it("never has the broker store a message twice, even when an answer is lost after the broker stored it", async () => {
    const broker = new FakeBroker();
    const { producer, outbox, transport } = setup({ broker });
    let lose = true;
    transport.route = (c) => {
      const answer = broker.handle(c);
      if (lose) {
        lose = false;
        networkDown();
      }
      return answer;
    };
    const first = await producer.send({ topic: "t", body: "x" });
    expect(first.status).toBe("queued");
    await eventually(async () => (await outbox.pending()) === 0);
    expect(broker.stored).toHaveLength(1);
    expect(transport.calls).toHaveLength(2);
    await producer.close();
  });

  it("stores a message given twice with the same msgId once", async () => {
    const network = new Network();
    network.up = false;
    const { producer, outbox } = setup({ network });
    await producer.send({ topic: "t", body: "x", msgId: "same" });
    await producer.send({ topic: "t", body: "x", msgId: "same" });
    expect(await outbox.pending()).toBe(1);
    await producer.close();
  });

  it("keeps sendBatch messages together in sequence", async () => {
    const network = new Network();
    network.up = false;
    const { producer, outbox, broker } = setup({ network });
    const results = await producer.sendBatch([
      { topic: "t", body: "1" },
      { topic: "t", body: "2" },
    ]);
    expect(results.map((r) => r.status)).toEqual(["queued", "queued"]);
    const drained = nextEvent(outbox, "drained");
    network.goOnline();
    await drained;
    expect(broker.bodies()).toEqual(["1", "2"]);
    await producer.close();
  });
});

describe("Outbox: one failing record does not block the others", () => {
  /** A broker that refuses whole requests by rule, as the real one does (a send is all or nothing). */
  function refusing(
    broker: FakeBroker,
    network: Network,
    refuse: (topic: string, messages: MessageInput[]) => void,
  ) {
    return (c: { method: string; path: string; body: unknown }) => {
      if (!network.up) networkDown();
      const topic = decodeURIComponent(/^\/v1\/topics\/([^/?]+)/.exec(c.path)![1]!);
      refuse(topic, (c.body as { messages: MessageInput[] }).messages);
      return broker.handle(c);
    };
  }

  function errorsOf(outbox: EventTarget): OutboxErrorDetail[] {
    const errors: OutboxErrorDetail[] = [];
    outbox.addEventListener("error", (e) =>
      errors.push((e as EdgemqEvent<OutboxErrorDetail>).detail),
    );
    return errors;
  }

  it("a topic refused with 403 holds back only its own messages, reports them, and sends them in order once allowed", async () => {
    const network = new Network();
    network.up = false;
    const broker = new FakeBroker();
    const { producer, outbox, transport } = setup({ network, broker });
    let allowed = false;
    transport.route = refusing(broker, network, (topic) => {
      if (topic === "locked" && !allowed) answerError("FORBIDDEN", "no publish permission");
    });
    const errors = errorsOf(outbox);
    for (const [topic, body] of [
      ["locked", "l1"],
      ["open", "o1"],
      ["locked", "l2"],
      ["other", "x1"],
      ["open", "o2"],
    ] as const)
      await producer.send({ topic, body });

    network.goOnline();
    await eventually(() => broker.stored.length === 3);
    expect(broker.bodies()).toEqual(["o1", "o2", "x1"]);
    expect((await outbox.list()).map((r) => r.message.body)).toEqual(["l1", "l2"]);
    expect(await outbox.pending()).toBe(2);
    expect(errors[0]).toMatchObject({ kept: true, topic: "locked", attempts: 1 });
    expect((errors[0]!.error as EdgemqError).code).toBe("FORBIDDEN");
    expect(errors[0]!.retryAt).toBeGreaterThan(Date.now() - 1000);

    // The app gets the permission (a new token), and the held topic drains in order.
    allowed = true;
    await outbox.drain();
    expect(broker.bodies()).toEqual(["o1", "o2", "x1", "l1", "l2"]);
    expect(await outbox.pending()).toBe(0);
    await producer.close();
  });

  it("a full queue (507) holds back only the sharding keys routed to it; the other keys flow, each in order", async () => {
    const network = new Network();
    network.up = false;
    const broker = new FakeBroker();
    const { producer, outbox, transport } = setup({ network, broker });
    let full = true;
    transport.route = refusing(broker, network, (_, messages) => {
      if (full && messages.some((m) => m.shardingKey === "stuck"))
        answerError("QUEUE_FULL", "queue 1 is full");
    });
    const errors = errorsOf(outbox);
    const sent: { body: string; key: string }[] = [];
    for (const key of ["a", "stuck", "b", "a", "stuck", "c", "b", "a"]) {
      const body = `${key}${sent.filter((x) => x.key === key).length + 1}`;
      sent.push({ body, key });
      await producer.send({ topic: "t", body, shardingKey: key });
    }
    const stuck = (await outbox.list()).find((r) => r.message.body === "stuck1")!;

    network.goOnline();
    await eventually(() => broker.stored.length === 6);
    const byKey = (k: string) =>
      broker.stored.filter((x) => x.message.shardingKey === k).map((x) => x.message.body);
    expect(byKey("a")).toEqual(["a1", "a2", "a3"]);
    expect(byKey("b")).toEqual(["b1", "b2"]);
    expect(byKey("c")).toEqual(["c1"]);
    expect(byKey("stuck")).toEqual([]);
    expect((await outbox.list()).map((r) => r.message.body)).toEqual(["stuck1", "stuck2"]);
    // Reported with the message the lane waits for.
    expect(errors[0]).toMatchObject({ kept: true, topic: "t", msgId: stuck.msgId, attempts: 1 });
    expect((errors[0]!.error as EdgemqError).code).toBe("QUEUE_FULL");

    // Room again: the held key goes out by itself (its backoff), in order.
    full = false;
    await eventually(async () => (await outbox.pending()) === 0);
    expect(byKey("stuck")).toEqual(["stuck1", "stuck2"]);
    await producer.close();
  });

  it("finds one stuck key among 64 with a handful of requests, not one per key", async () => {
    const network = new Network();
    network.up = false;
    const broker = new FakeBroker();
    const { producer, outbox, transport } = setup({
      network,
      broker,
      outbox: { backoff: { baseMs: 60_000 } },
    });
    transport.route = refusing(broker, network, (_, messages) => {
      if (messages.some((m) => m.shardingKey === "k17")) answerError("STORAGE_FULL", "shard full");
    });
    await producer.sendBatch(
      Array.from({ length: 64 }, (_, i) => ({ topic: "t", body: `m${i}`, shardingKey: `k${i}` })),
    );
    network.goOnline();
    await eventually(() => broker.stored.length === 63);
    expect(await outbox.pending()).toBe(1);
    // One failed batch, then halving: at most 2 requests per level of 6.
    expect(transport.calls.length).toBeLessThanOrEqual(1 + 2 * 6);
    await producer.close();
  });

  it("keeps a held lane in its own backoff: new messages of other lanes go out at once, without retrying it each time", async () => {
    const broker = new FakeBroker();
    const network = new Network();
    const { producer, outbox, transport } = setup({
      network,
      broker,
      outbox: { backoff: { baseMs: 60_000 } },
    });
    transport.route = refusing(broker, network, (_, messages) => {
      if (messages.some((m) => m.body === "poison")) answerError("INTERNAL", "cannot store");
    });
    const held = await producer.send({ topic: "t", body: "poison" });
    expect(held.status).toBe("queued");
    for (let i = 0; i < 5; i++) {
      const r = await producer.send({ topic: "t", body: `next${i}` });
      expect(r.status).toBe("stored");
    }
    expect(broker.bodies()).toEqual(["next0", "next1", "next2", "next3", "next4"]);
    const poisonTries = transport.calls.filter((c) =>
      (c.body as { messages: MessageInput[] }).messages.some((m) => m.body === "poison"),
    );
    expect(poisonTries).toHaveLength(1);
    expect(await outbox.pending()).toBe(1);
    await producer.close();
  });

  it("reports a record that keeps failing on every try, with the count of tries, and keeps it", async () => {
    const broker = new FakeBroker();
    const network = new Network();
    const { producer, outbox, transport } = setup({ network, broker });
    transport.route = refusing(broker, network, () => answerError("QUEUE_FULL", "full"));
    const errors = errorsOf(outbox);
    const r = await producer.send({ topic: "t", body: "never", shardingKey: "k" });
    await eventually(() => errors.length >= 3);
    expect(errors.slice(0, 3).map((e) => [e.kept, e.msgId, e.attempts])).toEqual([
      [true, r.msgId, 1],
      [true, r.msgId, 2],
      [true, r.msgId, 3],
    ]);
    expect(await outbox.pending()).toBe(1);
    await producer.close();
  });

  it("still stops the whole drain on a failure every request would meet (no network)", async () => {
    const broker = new FakeBroker();
    const network = new Network();
    network.up = false;
    const { producer, outbox, transport } = setup({ network, broker });
    for (const topic of ["a", "b", "c"]) await producer.send({ topic, body: topic });
    transport.route = () => networkDown();
    network.up = true;
    await outbox.drain();
    // One request, not one per topic.
    expect(transport.calls).toHaveLength(1);
    expect(await outbox.pending()).toBe(3);
    await producer.close();
  });
});
