/**
 * A batch that spans queues is all or nothing (api.md): when one queue
 * refuses its part, nothing of the batch is stored on any queue, and the
 * room the others reserved for it is given back.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { queueFor } from "../../src/protocol/routing.ts";
import { api, createTopic, shardStub } from "./helpers.ts";

/** A sharding key that routes to `queue` of a topic with `queues` queues. */
function keyFor(queue: number, queues: number): string {
  for (let i = 0; ; i++) if (queueFor(`key-${i}`, queues) === queue) return `key-${i}`;
}

const send = (topic: string, messages: unknown[]) =>
  api("POST", `/v1/topics/${topic}/messages`, { messages });
const stats = async (topic: string) =>
  ((await api("GET", `/v1/topics/${topic}`)).body.queueStats as { messages: number }[]).map(
    (q) => q.messages,
  );

describe("batches spanning queues", () => {
  it("answers 507 and stores nothing anywhere when one queue is full with reject", async () => {
    const topic = await createTopic({ queues: 2, maxBacklogMessages: 1, overflowPolicy: "reject" });
    const [k0, k1] = [keyFor(0, 2), keyFor(1, 2)];
    expect((await send(topic, [{ body: "fills q1", shardingKey: k1 }])).status).toBe(200);
    const batch = await send(topic, [
      { body: "for q0", shardingKey: k0 },
      { body: "for q1", shardingKey: k1 },
    ]);
    expect(batch.status).toBe(507);
    expect(batch.body.error.code).toBe("QUEUE_FULL");
    expect(await stats(topic)).toEqual([0, 1]);
    const q0 = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0`);
    expect(q0.body.messages).toEqual([]);
    // Queue 0's reservation was given back: its one place is free.
    expect((await send(topic, [{ body: "alone", shardingKey: k0 }])).status).toBe(200);
    expect(await stats(topic)).toEqual([1, 1]);
  });

  it("answers 507 and stores nothing anywhere when one queue's shard is at its storage ceiling", async () => {
    const topic = await createTopic({ queues: 2 });
    const [k0, k1] = [keyFor(0, 2), keyFor(1, 2)];
    const q1 = shardStub(topic, 1);
    const size = await runInDurableObject(q1, (_i, state) => state.storage.sql.databaseSize);
    await q1.setStorageLimit(size + 4096);
    const batch = await send(topic, [
      { body: "x".repeat(2000), shardingKey: k0 },
      { body: "y".repeat(8000), shardingKey: k1 },
    ]);
    expect(batch.status).toBe(507);
    expect(batch.body.error.code).toBe("STORAGE_FULL");
    expect(await stats(topic)).toEqual([0, 0]);
    await q1.setStorageLimit(null);
    const ok = await send(topic, [
      { body: "x", shardingKey: k0 },
      { body: "y", shardingKey: k1 },
    ]);
    expect(ok.status).toBe(200);
    expect(await stats(topic)).toEqual([1, 1]);
  });

  it("stores a spanning batch whole when every queue has room, and answers its retry duplicate even at the bound", async () => {
    const topic = await createTopic({ queues: 2, maxBacklogMessages: 1, overflowPolicy: "reject" });
    const [k0, k1] = [keyFor(0, 2), keyFor(1, 2)];
    const messages = [
      { body: "a", shardingKey: k0, msgId: `${topic}-a` },
      { body: "b", shardingKey: k1, msgId: `${topic}-b` },
    ];
    const first = await send(topic, messages);
    expect(first.status).toBe(200);
    expect(first.body.results.map((r: { status: string }) => r.status)).toEqual([
      "stored",
      "stored",
    ]);
    // Both queues are at their bound now; a producer retrying the same batch is told it is stored.
    const retry = await send(topic, messages);
    expect(retry.status).toBe(200);
    expect(retry.body.results.map((r: { status: string }) => r.status)).toEqual([
      "duplicate",
      "duplicate",
    ]);
    expect(await stats(topic)).toEqual([1, 1]);
  });

  it("holds reserved room against other sends until the part arrives or is released", async () => {
    const topic = await createTopic({ queues: 1, maxBacklogMessages: 1, overflowPolicy: "reject" });
    const stub = shardStub(topic, 0);
    const part = {
      messages: [{ msgId: "r1", clientMsgId: false, size: 1, deliverAt: null, expireAt: null }],
      footprint: 600,
    };
    expect(await stub.reserve("held", part, null)).toMatchObject({ ok: true });
    expect((await send(topic, [{ body: "other" }])).status).toBe(507);
    expect((await stub.reserve("second", part, null)).ok).toBe(false);
    expect((await stub.release("held")).ok).toBe(true);
    expect((await send(topic, [{ body: "other" }])).status).toBe(200);
  });
});
