/**
 * The storage ceiling of a shard (a Durable Object's SQLite holds 10 GB on
 * Cloudflare): sends are refused with 507 STORAGE_FULL before a write could
 * reach it, and nothing acknowledged is lost. The test shrinks one shard's
 * ceiling through its setting instead of writing gigabytes.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, createTopic, shardStub, unique } from "./helpers.ts";

const batch = (n: number, bytes: number, tag = "b") =>
  Array.from({ length: n }, (_, i) => ({ body: `${tag}${i}:`.padEnd(bytes, "x") }));

const databaseSize = (topic: string) =>
  runInDurableObject(shardStub(topic, 0), (_i, state) => state.storage.sql.databaseSize);

const send = (topic: string, messages: unknown[]) =>
  api("POST", `/v1/topics/${topic}/messages?queue=0`, { messages });

async function pullAll(topic: string): Promise<string[]> {
  const bodies: string[] = [];
  let offset = 0;
  for (let i = 0; i < 100; i++) {
    const r = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=${offset}&max=1000`);
    bodies.push(...r.body.messages.map((m: { body: string }) => m.body));
    if (r.body.nextOffset >= r.body.maxOffset) break;
    offset = r.body.nextOffset;
  }
  return bodies;
}

describe("storage ceiling", () => {
  it("answers 507 STORAGE_FULL before the database reaches its ceiling, keeping every acknowledged message", async () => {
    const topic = await createTopic({ queues: 1 });
    const limit = (await databaseSize(topic)) + 256 * 1024;
    await shardStub(topic, 0).setStorageLimit(limit);
    const acknowledged: string[] = [];
    let refused: { status: number; body: any } | null = null;
    for (let i = 0; i < 200 && !refused; i++) {
      const messages = batch(10, 2048, `r${i}-`);
      const r = await send(topic, messages);
      if (r.status === 200) acknowledged.push(...messages.map((m) => m.body));
      else refused = r;
    }
    expect(refused?.status).toBe(507);
    expect(refused?.body.error.code).toBe("STORAGE_FULL");
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(await databaseSize(topic)).toBeLessThan(limit);
    // Every acknowledged message is there; the refused batch stored nothing.
    expect(await pullAll(topic)).toEqual(acknowledged);
    const stats = (await api("GET", `/v1/topics/${topic}`)).body.queueStats[0];
    expect(stats).toMatchObject({ messages: acknowledged.length, maxOffset: acknowledged.length });
  });

  it("refuses a batch that would cross the ceiling whole, while a smaller one still fits", async () => {
    const topic = await createTopic({ queues: 1 });
    await shardStub(topic, 0).setStorageLimit((await databaseSize(topic)) + 128 * 1024);
    const big = await send(topic, batch(100, 2048));
    expect(big.status).toBe(507);
    expect(big.body.error.code).toBe("STORAGE_FULL");
    expect((await api("GET", `/v1/topics/${topic}`)).body.queueStats[0]).toMatchObject({
      messages: 0,
      maxOffset: 0,
    });
    const small = await send(topic, batch(5, 2048));
    expect(small.status).toBe(200);
    expect(small.body.results.map((r: { offset: number }) => r.offset)).toEqual([0, 1, 2, 3, 4]);
  });

  it("keeps consuming while full, and takes sends again once a purge or a higher ceiling makes room", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    const stub = shardStub(topic, 0);
    const base = await databaseSize(topic);
    await send(topic, batch(50, 2048));
    await stub.setStorageLimit(base + 64 * 1024);
    expect((await send(topic, batch(1, 16))).body.error.code).toBe("STORAGE_FULL");
    // Transactions' half messages are refused too.
    const tx = await api("POST", `/v1/topics/${topic}/transactions`, {
      message: { body: "half" },
      producerGroup: "pg",
    });
    expect(tx.status).toBe(507);
    // Consumers are never refused.
    const got = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 5 });
    expect(got.body.messages).toHaveLength(5);
    const ack = await api("POST", `/v1/groups/${group}/topics/${topic}/ack`, {
      receipts: got.body.messages.map((m: { receipt: string }) => m.receipt),
    });
    expect(ack.body.results.every((r: { ok?: boolean }) => r.ok)).toBe(true);
    expect(
      (await api("PUT", `/v1/groups/${group}/topics/${topic}/queues/0/offset`, { offset: 5 }))
        .status,
    ).toBe(200);
    // A purge frees the space.
    expect((await api("POST", `/v1/topics/${topic}/purge`)).status).toBe(200);
    expect((await send(topic, batch(1, 16))).status).toBe(200);
    // So does raising the ceiling again.
    await send(topic, batch(50, 2048)).catch(() => null);
    await stub.setStorageLimit(null);
    expect(await stub.storageLimit()).toEqual({ ok: true, value: 9.5 * 1024 ** 3 });
    expect((await send(topic, batch(50, 2048))).status).toBe(200);
  });
});
