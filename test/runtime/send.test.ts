import { describe, expect, it } from "vitest";
import { queueFor } from "../../src/protocol/routing.ts";
import { api, createTopic } from "./helpers.ts";

async function pullAll(topic: string, queue: number) {
  return (await api("GET", `/v1/topics/${topic}/queues/${queue}/messages?offset=0&max=1000`)).body;
}

describe("send", () => {
  it("assigns dense, increasing offsets in request order", async () => {
    const topic = await createTopic({ queues: 1 });
    const messages = Array.from({ length: 50 }, (_, i) => ({ body: `m${i}` }));
    const r = await api("POST", `/v1/topics/${topic}/messages`, { messages });
    expect(r.body.results.map((x: { offset: number }) => x.offset)).toEqual(
      messages.map((_, i) => i),
    );
    const again = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "next" }],
    });
    expect(again.body.results[0].offset).toBe(50);
    const pulled = await pullAll(topic, 0);
    expect(pulled.messages.map((m: { body: string }) => m.body)).toEqual([
      ...messages.map((m) => m.body),
      "next",
    ]);
  });

  it("routes by pinned queue, then sharding key, then msgId", async () => {
    const topic = await createTopic({ queues: 4 });
    const r = await api("POST", `/v1/topics/${topic}/messages?queue=2`, {
      messages: [{ body: "pinned" }],
    });
    expect(r.body.results[0].queue).toBe(2);
    const keyed = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: Array.from({ length: 5 }, (_, i) => ({ body: `k${i}`, shardingKey: "user-42" })),
    });
    const q = queueFor("user-42", 4);
    expect(keyed.body.results.every((x: { queue: number }) => x.queue === q)).toBe(true);
    const byId = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "i", msgId: "order-1" }],
    });
    expect(byId.body.results[0].queue).toBe(queueFor("order-1", 4));
  });

  it("never stores a retried msgId twice and answers the first copy's address", async () => {
    const topic = await createTopic({ queues: 2 });
    const first = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "once", msgId: "retry-me" }],
    });
    const second = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "once", msgId: "retry-me" }],
    });
    expect(first.body.results[0].status).toBe("stored");
    expect(second.body.results[0]).toMatchObject({
      status: "duplicate",
      msgId: "retry-me",
      queue: first.body.results[0].queue,
      offset: first.body.results[0].offset,
    });
    const stats = (await api("GET", `/v1/topics/${topic}`)).body.queueStats;
    expect(stats.reduce((n: number, s: { messages: number }) => n + s.messages, 0)).toBe(1);
  });

  it("keeps base64 bodies as sent and counts their decoded size", async () => {
    const topic = await createTopic({ queues: 1, maxMessageBytes: 3 });
    const ok = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "AAEC", encoding: "base64" }],
    });
    expect(ok.status).toBe(200);
    const big = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "AAECAw==", encoding: "base64" }],
    });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe("MESSAGE_TOO_LARGE");
    const pulled = await pullAll(topic, 0);
    expect(pulled.messages).toHaveLength(1);
    expect(pulled.messages[0]).toMatchObject({ body: "AAEC", encoding: "base64" });
    expect((await api("GET", `/v1/topics/${topic}`)).body.queueStats[0].bytes).toBe(3);
  });

  it("rejects a whole batch when one message is bad, storing nothing", async () => {
    const topic = await createTopic({ queues: 2 });
    const r = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "good" }, { body: "bad", priority: 12 }, { body: "good too" }],
    });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("BAD_REQUEST");
    expect(r.body.error.message).toContain("messages[1]");
    const stats = (await api("GET", `/v1/topics/${topic}`)).body.queueStats;
    expect(stats.every((s: { maxOffset: number }) => s.maxOffset === 0)).toBe(true);
  });

  it("answers each documented error for bad sends and stores nothing", async () => {
    const topic = await createTopic({ queues: 1, maxMessageBytes: 10 });
    const cases: [unknown, number, string][] = [
      ["{not json", 400, "BAD_REQUEST"],
      [{ messages: [] }, 400, "BAD_REQUEST"],
      [{ msgs: [{ body: "x" }] }, 400, "BAD_REQUEST"],
      [{ messages: [{ body: 7 }] }, 400, "BAD_REQUEST"],
      [{ messages: [{ body: "x", encoding: "latin1" }] }, 400, "BAD_REQUEST"],
      [{ messages: [{ body: "!!", encoding: "base64" }] }, 400, "BAD_REQUEST"],
      [{ messages: [{ body: "x", properties: { n: 1 } }] }, 400, "BAD_REQUEST"],
      [{ messages: [{ body: "x", keys: "k" }] }, 400, "BAD_REQUEST"],
      [{ messages: [{ body: "x".repeat(11) }] }, 413, "MESSAGE_TOO_LARGE"],
      [{ messages: Array.from({ length: 1001 }, () => ({ body: "x" })) }, 413, "BATCH_TOO_LARGE"],
    ];
    for (const [body, status, code] of cases) {
      const r = await api("POST", `/v1/topics/${topic}/messages`, body);
      expect({ body, status: r.status, code: r.body.error?.code }).toEqual({ body, status, code });
      expect(typeof r.body.error.message).toBe("string");
    }
    const badQueue = await api("POST", `/v1/topics/${topic}/messages?queue=5`, {
      messages: [{ body: "x" }],
    });
    expect(badQueue.status).toBe(400);
    const unknown = await api("POST", `/v1/topics/never-created-topic/messages`, {
      messages: [{ body: "x" }],
    });
    expect(unknown.body.error.code).toBe("TOPIC_NOT_FOUND");
    const badName = await api("POST", `/v1/topics/bad%20name/messages`, {
      messages: [{ body: "x" }],
    });
    expect(badName.body.error.code).toBe("INVALID_NAME");
    expect((await api("GET", `/v1/topics/${topic}`)).body.queueStats[0].maxOffset).toBe(0);
  });
});
