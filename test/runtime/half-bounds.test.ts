/**
 * Half messages obey the topic's bounds: an open one holds room under the
 * backlog bounds (a prepare past them answers QUEUE_FULL), a purge removes
 * them (a later commit answers 409 and makes nothing visible), and one open
 * longer than the maximum lifetime is rolled back, checked or not.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { Limits } from "../../src/protocol/limits.ts";
import { api, createTopic, shardStub } from "./helpers.ts";
import { ageHalfMessages, countRows } from "./storage-sql.ts";

const prepare = (topic: string, body: string) =>
  api("POST", `/v1/topics/${topic}/transactions`, {
    message: { body },
    producerGroup: "pg-bounds",
  });
const send = (topic: string, body: string) =>
  api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body }] });
const pullAll = async (topic: string) =>
  (await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0&max=100`)).body.messages.map(
    (m: { body: string }) => m.body,
  );

describe("half messages and the backlog bounds", () => {
  it("counts an open half message against a reject bound: a prepare or send past it answers QUEUE_FULL", async () => {
    const topic = await createTopic({ queues: 1, maxBacklogMessages: 1, overflowPolicy: "reject" });
    const first = await prepare(topic, "half-1");
    expect(first.status).toBe(200);
    for (let i = 2; i <= 4; i++) {
      const more = await prepare(topic, `half-${i}`);
      expect(more.status).toBe(507);
      expect(more.body.error.code).toBe("QUEUE_FULL");
    }
    const sent = await send(topic, "plain");
    expect(sent.status).toBe(507);
    expect(await countRows(topic, "half")).toBe(1);
    // Its commit takes the room it held.
    const commit = await api("POST", `/v1/transactions/${first.body.txId}/commit`);
    expect(commit.status).toBe(200);
    expect(await pullAll(topic)).toEqual(["half-1"]);
    expect((await prepare(topic, "half-5")).status).toBe(507);
  });

  it("counts half messages against a byte bound, and refuses a prepare past it whatever the policy", async () => {
    const topic = await createTopic({
      queues: 1,
      maxMessageBytes: 100,
      maxBacklogBytes: 100,
      overflowPolicy: "drop-oldest",
    });
    expect((await send(topic, "s".repeat(40))).status).toBe(200);
    expect((await prepare(topic, "h".repeat(50))).status).toBe(200);
    // 40 stored + 50 held: a half message of 20 would pass the bound, and nothing stored is dropped for it.
    const over = await prepare(topic, "x".repeat(20));
    expect(over.status).toBe(507);
    expect(over.body.error.code).toBe("QUEUE_FULL");
    expect(await pullAll(topic)).toEqual(["s".repeat(40)]);
    // A send evicts stored messages to fit beside the half message's room.
    const sent = await send(topic, "n".repeat(30));
    expect(sent.body.results[0].status).toBe("stored");
    expect(await pullAll(topic)).toEqual(["n".repeat(30)]);
  });

  it("gives the room back when a half message is rolled back", async () => {
    const topic = await createTopic({ queues: 1, maxBacklogMessages: 1, overflowPolicy: "reject" });
    const half = await prepare(topic, "half");
    expect((await send(topic, "plain")).status).toBe(507);
    expect((await api("POST", `/v1/transactions/${half.body.txId}/rollback`)).status).toBe(200);
    expect((await send(topic, "plain")).status).toBe(200);
  });

  it("removes open half messages on purge: a later commit answers 409 and nothing becomes visible", async () => {
    const topic = await createTopic({ queues: 1, maxBacklogMessages: 2, overflowPolicy: "reject" });
    const a = await prepare(topic, "purged-a");
    const b = await prepare(topic, "purged-b");
    expect((await api("POST", `/v1/topics/${topic}/purge`)).status).toBe(200);
    const commit = await api("POST", `/v1/transactions/${a.body.txId}/commit`);
    expect(commit.status).toBe(409);
    expect(commit.body.error.code).toBe("TRANSACTION_ENDED");
    const state = await api("GET", `/v1/transactions/${b.body.txId}`);
    expect(state.body).toMatchObject({ status: "rolledBack", endReason: "purge" });
    expect((await api("GET", `/v1/topics/${topic}/transactions`)).body.transactions).toEqual([]);
    expect(await pullAll(topic)).toEqual([]);
    // Their room is free again: two new ones fit.
    expect((await prepare(topic, "after-1")).status).toBe(200);
    expect((await prepare(topic, "after-2")).status).toBe(200);
    expect((await prepare(topic, "after-3")).status).toBe(507);
  });

  it("rolls back a half message open longer than the maximum lifetime, with no check URL", async () => {
    const topic = await createTopic({ queues: 1, maxBacklogMessages: 1, overflowPolicy: "reject" });
    const half = await prepare(topic, "forgotten");
    expect(half.status).toBe(200);
    const stub = shardStub(topic, 0);
    // Before its lifetime nothing happens.
    await runDurableObjectAlarm(stub);
    expect((await api("GET", `/v1/transactions/${half.body.txId}`)).body.status).toBe("open");
    await ageHalfMessages(topic, Limits.maxTransactionLifetimeMs + 1000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const state = await api("GET", `/v1/transactions/${half.body.txId}`);
    expect(state.body).toMatchObject({ status: "rolledBack", endReason: "lifetime exceeded" });
    const commit = await api("POST", `/v1/transactions/${half.body.txId}/commit`);
    expect(commit.status).toBe(409);
    expect(await pullAll(topic)).toEqual([]);
    expect((await send(topic, "room again")).status).toBe(200);
  });
});
