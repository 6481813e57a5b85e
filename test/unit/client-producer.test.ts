import { describe, expect, it } from "vitest";
import { EdgemqError } from "../../src/protocol/errors.ts";
import type { MessageInput } from "../../src/protocol/types.ts";
import { Batcher } from "../../client/batcher.ts";
import { Producer } from "../../client/producer.ts";
import { answerError, delay, FakeBroker, FakeTransport, networkDown } from "./client-fakes.ts";

const sends = (t: FakeTransport) => t.callsTo(/^POST \/v1\/topics\/[^/]+\/messages/);
const sentMessages = (t: FakeTransport, i: number) =>
  (sends(t)[i]!.body as { messages: MessageInput[] }).messages;

function producerOn(
  transport: FakeTransport,
  extra: Partial<ConstructorParameters<typeof Producer>[0]> = {},
) {
  return new Producer({
    transport,
    retry: { baseMs: 1, maxMs: 2, random: () => 0 },
    ...extra,
  } as never);
}

describe("Producer batching", () => {
  it("sends concurrent send() calls made within the linger window in one request", async () => {
    const broker = new FakeBroker();
    const t = new FakeTransport((c) => broker.handle(c));
    const producer = producerOn(t, { batch: { lingerMs: 20 } });
    const results = await Promise.all(
      ["a", "b", "c"].map((body) => producer.send({ topic: "orders", body })),
    );
    expect(sends(t)).toHaveLength(1);
    expect(sentMessages(t, 0).map((m) => m.body)).toEqual(["a", "b", "c"]);
    expect(results.map((r) => r.status)).toEqual(["stored", "stored", "stored"]);
    expect(results.map((r) => ("offset" in r ? r.offset : null))).toEqual([0, 1, 2]);
  });

  it("gives each caller the result of its own message", async () => {
    const broker = new FakeBroker();
    const t = new FakeTransport((c) => broker.handle(c));
    const producer = producerOn(t);
    const [x, y] = await Promise.all([
      producer.send({ topic: "t", body: "x", msgId: "id-x" }),
      producer.send({ topic: "t", body: "y", msgId: "id-y" }),
    ]);
    expect(x!.msgId).toBe("id-x");
    expect(y!.msgId).toBe("id-y");
  });

  it("keeps topics in separate requests", async () => {
    const broker = new FakeBroker();
    const t = new FakeTransport((c) => broker.handle(c));
    const producer = producerOn(t);
    await Promise.all([
      producer.send({ topic: "a", body: "1" }),
      producer.send({ topic: "b", body: "2" }),
      producer.send({ topic: "a", body: "3" }),
    ]);
    expect(
      sends(t)
        .map((c) => c.path)
        .sort(),
    ).toEqual(["/v1/topics/a/messages", "/v1/topics/b/messages"]);
  });

  it("flushes a batch as soon as it reaches maxMessages, without waiting for the linger", async () => {
    const broker = new FakeBroker();
    const t = new FakeTransport((c) => broker.handle(c));
    const producer = producerOn(t, { batch: { lingerMs: 10_000, maxMessages: 2 } });
    const started = Date.now();
    await Promise.all(["1", "2", "3", "4"].map((body) => producer.send({ topic: "t", body })));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(sends(t).map((c) => (c.body as { messages: unknown[] }).messages.length)).toEqual([
      2, 2,
    ]);
  });

  it("starts a new batch when the next message would pass the byte budget", async () => {
    const broker = new FakeBroker();
    const t = new FakeTransport((c) => broker.handle(c));
    const producer = producerOn(t, { batch: { lingerMs: 5, maxBytes: 300 } });
    await Promise.all([0, 1, 2].map(() => producer.send({ topic: "t", body: "x".repeat(120) })));
    expect(sends(t).length).toBeGreaterThanOrEqual(2);
    expect(broker.stored).toHaveLength(3);
  });

  it("sends each message alone when batching is off", async () => {
    const broker = new FakeBroker();
    const t = new FakeTransport((c) => broker.handle(c));
    const producer = producerOn(t, { batch: false });
    await Promise.all(["1", "2"].map((body) => producer.send({ topic: "t", body })));
    expect(sends(t)).toHaveLength(2);
  });

  it("pins the queue with ?queue=N", async () => {
    const broker = new FakeBroker();
    const t = new FakeTransport((c) => broker.handle(c));
    await producerOn(t).send({ topic: "t", body: "x", queue: 3 });
    expect(sends(t)[0]!.path).toBe("/v1/topics/t/messages?queue=3");
  });
});

describe("Producer retries", () => {
  it("retries a network failure with the same msgId, so the broker stores the message once", async () => {
    const broker = new FakeBroker();
    let attempt = 0;
    const t = new FakeTransport((c) => {
      attempt++;
      // The first attempt reaches the broker but its answer is lost.
      const answer = broker.handle(c);
      if (attempt === 1) networkDown();
      return answer;
    });
    const result = await producerOn(t).send({ topic: "t", body: "once" });
    expect(sends(t)).toHaveLength(2);
    const ids = sends(t).map((c) => (c.body as { messages: MessageInput[] }).messages[0]!.msgId);
    expect(ids[0]).toBeTruthy();
    expect(ids[1]).toBe(ids[0]);
    expect(result.status).toBe("duplicate");
    expect(broker.stored).toHaveLength(1);
  });

  it("retries 5xx and 429 answers, then succeeds", async () => {
    const broker = new FakeBroker();
    const failures = ["INTERNAL", "RATE_LIMITED", "UNAVAILABLE"] as const;
    let n = 0;
    const t = new FakeTransport((c) => {
      const code = failures[n++];
      if (code) answerError(code, "try later");
      return broker.handle(c);
    });
    const result = await producerOn(t, {
      retry: { maxAttempts: 5, baseMs: 1, random: () => 0 },
    }).send({
      topic: "t",
      body: "x",
    });
    expect(result.status).toBe("stored");
    expect(sends(t)).toHaveLength(4);
  });

  it("gives up after maxAttempts with the last error", async () => {
    const t = new FakeTransport(() => networkDown());
    const producer = producerOn(t, { retry: { maxAttempts: 3, baseMs: 1, random: () => 0 } });
    const err = await producer.send({ topic: "t", body: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EdgemqError);
    expect((err as EdgemqError).code).toBe("UNAVAILABLE");
    expect(sends(t)).toHaveLength(3);
  });

  it("does not retry a 4xx", async () => {
    const t = new FakeTransport(() => answerError("TOPIC_NOT_FOUND", "no such topic"));
    const err = await producerOn(t)
      .send({ topic: "t", body: "x" })
      .catch((e: unknown) => e);
    expect((err as EdgemqError).code).toBe("TOPIC_NOT_FOUND");
    expect(sends(t)).toHaveLength(1);
  });

  it("counts an attempt with no answer within timeoutMs as a network failure and retries it", async () => {
    const broker = new FakeBroker();
    let n = 0;
    const t = new FakeTransport((c, signal) => {
      if (n++ === 0) {
        return new Promise((_, reject) =>
          signal?.addEventListener("abort", () => reject(signal.reason)),
        );
      }
      return broker.handle(c);
    });
    const producer = producerOn(t, { retry: { timeoutMs: 30, baseMs: 1, random: () => 0 } });
    expect((await producer.send({ topic: "t", body: "x" })).status).toBe("stored");
    expect(sends(t)).toHaveLength(2);
  });
});

describe("Producer input checks", () => {
  it("refuses a bad message before anything is sent", async () => {
    const t = new FakeTransport(() => ({ results: [] }));
    const producer = producerOn(t);
    await expect(producer.send({ topic: "t", body: "x", priority: 42 })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(producer.send({ topic: "bad topic!", body: "x" })).rejects.toMatchObject({
      code: "INVALID_NAME",
    });
    await expect(
      producer.send({ topic: "t", body: "x", delayMs: 10, delayLevel: 2 }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
    expect(t.calls).toHaveLength(0);
  });

  it("fails only the caller whose message the broker names, and sends the others", async () => {
    const broker = new FakeBroker();
    const t = new FakeTransport((c) => {
      const messages = (c.body as { messages: MessageInput[] }).messages;
      const bad = messages.findIndex((m) => m.body === "too big for this topic");
      if (bad >= 0) answerError("MESSAGE_TOO_LARGE", `messages[${bad}]: too large`, { index: bad });
      return broker.handle(c);
    });
    const producer = producerOn(t, { batch: { lingerMs: 20 } });
    const [a, b, c] = await Promise.allSettled([
      producer.send({ topic: "t", body: "fine 1" }),
      producer.send({ topic: "t", body: "too big for this topic" }),
      producer.send({ topic: "t", body: "fine 2" }),
    ]);
    expect(a.status).toBe("fulfilled");
    expect(b.status).toBe("rejected");
    expect((b as PromiseRejectedResult).reason.code).toBe("MESSAGE_TOO_LARGE");
    expect(c.status).toBe("fulfilled");
    expect(broker.bodies()).toEqual(["fine 1", "fine 2"]);
  });

  it("encodes byte bodies as base64", async () => {
    const broker = new FakeBroker();
    const t = new FakeTransport((c) => broker.handle(c));
    await producerOn(t).send({ topic: "t", body: new Uint8Array([0, 255, 1]) });
    expect(broker.stored[0]!.message).toMatchObject({ body: "AP8B", encoding: "base64" });
  });

  it("turns a Date deliverAt into Unix milliseconds", async () => {
    const broker = new FakeBroker();
    const t = new FakeTransport((c) => broker.handle(c));
    const at = new Date(Date.now() + 60_000);
    await producerOn(t).send({ topic: "t", body: "later", deliverAt: at });
    expect(broker.stored[0]!.message.deliverAt).toBe(at.getTime());
  });
});

describe("Producer.sendBatch", () => {
  it("sends all messages in one request and returns results in order", async () => {
    const broker = new FakeBroker();
    const t = new FakeTransport((c) => broker.handle(c));
    const results = await producerOn(t).sendBatch([
      { topic: "t", body: "1" },
      { topic: "t", body: "2" },
    ]);
    expect(sends(t)).toHaveLength(1);
    expect(results.map((r) => ("offset" in r ? r.offset : null))).toEqual([0, 1]);
  });

  it("refuses a batch spanning topics", async () => {
    const t = new FakeTransport(() => ({ results: [] }));
    await expect(
      producerOn(t).sendBatch([
        { topic: "a", body: "1" },
        { topic: "b", body: "2" },
      ]),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });
});

describe("Producer transactions", () => {
  function txBroker() {
    return new FakeTransport((c) => {
      if (c.path === "/v1/topics/t/transactions") return { txId: "tx1", msgId: "m1" };
      if (c.path === "/v1/transactions/tx1/commit") return { status: "committed" };
      if (c.path === "/v1/transactions/tx1/rollback") return { status: "rolledBack" };
      return answerError("NOT_FOUND", c.path);
    });
  }

  it("commits when the local transaction returns commit", async () => {
    const t = txBroker();
    const producer = producerOn(t, { producerGroup: "pg" });
    const result = await producer.sendInTransaction({ topic: "t", body: "x" }, () => "commit");
    expect(result).toEqual({ txId: "tx1", msgId: "m1", status: "committed" });
    expect(t.calls[0]!.body).toMatchObject({ producerGroup: "pg", message: { body: "x" } });
  });

  it("rolls back when the local transaction returns rollback", async () => {
    const t = txBroker();
    const result = await producerOn(t, { producerGroup: "pg" }).sendInTransaction(
      { topic: "t", body: "x" },
      async () => "rollback" as const,
    );
    expect(result.status).toBe("rolledBack");
  });

  it("rolls back and rethrows when the local transaction throws", async () => {
    const t = txBroker();
    const boom = new Error("db down");
    await expect(
      producerOn(t, { producerGroup: "pg" }).sendInTransaction({ topic: "t", body: "x" }, () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(t.callsTo(/rollback$/)).toHaveLength(1);
  });

  it("leaves an unknown outcome open for the broker's check-back", async () => {
    const t = txBroker();
    const result = await producerOn(t, { producerGroup: "pg" }).sendInTransaction(
      { topic: "t", body: "x" },
      () => "unknown",
    );
    expect(result.status).toBe("unknown");
    expect(t.calls).toHaveLength(1);
  });

  it("needs a producer group", async () => {
    const t = txBroker();
    await expect(
      producerOn(t).sendInTransaction({ topic: "t", body: "x" }, () => "commit"),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
  });
});

describe("Producer transactions, checked before the half message goes out", () => {
  it("refuses a scheduled transactional message as the broker would, sending nothing", async () => {
    const t = new FakeTransport(() => ({ txId: "tx1", msgId: "m1" }));
    const producer = producerOn(t, { producerGroup: "pg" });
    await expect(
      producer.sendInTransaction({ topic: "t", body: "x", delayMs: 5000 }, () => "commit"),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: "a transactional message cannot be scheduled",
    });
    expect(t.calls).toHaveLength(0);
  });

  it("refuses a producer group outside the name pattern as INVALID_NAME, sending nothing", async () => {
    const t = new FakeTransport(() => ({ txId: "tx1", msgId: "m1" }));
    await expect(
      producerOn(t).sendInTransaction({ topic: "t", body: "x" }, () => "commit", {
        producerGroup: "pg/../other",
      }),
    ).rejects.toMatchObject({ code: "INVALID_NAME" });
    expect(t.calls).toHaveLength(0);
  });
});

describe("Batcher ordering", () => {
  it("holds a batch until an earlier batch with the same order key has settled", async () => {
    const log: string[] = [];
    let releaseFirst!: () => void;
    const firstDone = new Promise<void>((r) => (releaseFirst = r));
    const batcher = new Batcher<{ size: number; key: string; body: string }, string>(
      async (_k, entries) => {
        const bodies = entries.map((e) => e.item.body).join(",");
        log.push(`start ${bodies}`);
        if (bodies === "1") await firstDone;
        log.push(`end ${bodies}`);
        for (const e of entries) e.resolve(e.item.body);
      },
      () => "topic",
      (item) => item.key,
      { lingerMs: 0, maxMessages: 1 },
    );
    const p1 = batcher.add({ size: 1, key: "k", body: "1" });
    const p2 = batcher.add({ size: 1, key: "k", body: "2" });
    const p3 = batcher.add({ size: 1, key: "other", body: "3" });
    await delay(20);
    expect(log).toEqual(["start 1", "start 3", "end 3"]);
    releaseFirst();
    await Promise.all([p1, p2, p3]);
    expect(log).toEqual(["start 1", "start 3", "end 3", "end 1", "start 2", "end 2"]);
  });
});
