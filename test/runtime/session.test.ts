/**
 * Streaming sessions (docs/protocol.md) on the real runtime: the gateway's
 * upgrade, the shard's hub, sends through the group commit, pushes to
 * subscribed sessions, acks, pull mode with offset commits.
 */
import { describe, expect, it } from "vitest";
import { SessionClose } from "../../src/protocol/session.ts";
import { api, createTopic, unique } from "./helpers.ts";
import { openSession } from "./session-helpers.ts";
import { mint } from "./token-helpers.ts";

const committedOf = async (topic: string, group: string): Promise<number> =>
  (await api("GET", `/v1/groups/${group}/topics/${topic}/offsets`)).body.offsets[0].offset;

const pullAll = async (topic: string, queue = 0) =>
  (await api("GET", `/v1/topics/${topic}/queues/${queue}/messages?offset=0&max=1000`)).body;

describe("session: handshake", () => {
  it("says ready with the queue, its topic's queue count and the limits", async () => {
    const topic = await createTopic({ queues: 2 });
    const s = await openSession(topic, 1);
    const ready = await s.next("ready");
    expect(ready).toMatchObject({
      v: 1,
      topic,
      queue: 1,
      queues: 2,
      group: null,
      publish: true,
      consume: true,
    });
    expect(ready.limits.maxClientFrameBytes).toBe(1024 * 1024);
    s.close();
  });

  it("refuses a queue outside the topic with an error frame and close code 4404", async () => {
    const topic = await createTopic({ queues: 2 });
    const s = await openSession(topic, 2);
    const e = await s.next("error");
    expect(e.error.code).toBe("NOT_FOUND");
    expect((await s.closed).code).toBe(SessionClose.NOT_FOUND);
  });

  it("tells open sessions the new queue count when the topic grows", async () => {
    const topic = await createTopic({ queues: 1 });
    const s = await openSession(topic, 0);
    await s.next("ready");
    await api("PUT", `/v1/topics/${topic}`, { queues: 3 });
    expect(await s.next("route")).toEqual({ type: "route", topic, queues: 3 });
    s.close();
  });

  it("answers a plain GET of the session path 426 UPGRADE_REQUIRED", async () => {
    const topic = await createTopic({ queues: 1 });
    const r = await api("GET", `/v1/topics/${topic}/queues/0/session`);
    expect(r.status).toBe(426);
    expect(r.body.error.code).toBe("UPGRADE_REQUIRED");
  });
});

describe("session: send", () => {
  it("stores a send frame's messages and answers one result per message, in order", async () => {
    const topic = await createTopic({ queues: 1 });
    const s = await openSession(topic, 0);
    await s.next("ready");
    s.send({ type: "send", id: 7, messages: [{ body: "a", msgId: "m-a" }, { body: "b" }] });
    const sent = await s.next("sent");
    expect(sent.id).toBe(7);
    expect(sent.results.map((r: any) => [r.status, r.offset])).toEqual([
      ["stored", 0],
      ["stored", 1],
    ]);
    expect(sent.results[0].msgId).toBe("m-a");
    expect((await pullAll(topic)).messages.map((m: any) => m.body)).toEqual(["a", "b"]);
    s.close();
  });

  it("refuses a bad message alone: its result carries the error, the others are stored", async () => {
    const topic = await createTopic({ queues: 1 });
    const s = await openSession(topic, 0);
    await s.next("ready");
    s.send({ type: "send", id: 1, messages: [{ body: "ok" }, { body: 5 }, { body: "ok2" }] });
    const sent = await s.next("sent");
    expect(sent.results[0].status).toBe("stored");
    expect(sent.results[1].error.code).toBe("BAD_REQUEST");
    expect(sent.results[2].status).toBe("stored");
    expect((await pullAll(topic)).messages.map((m: any) => m.body)).toEqual(["ok", "ok2"]);
    s.close();
  });

  it("stores a resent msgId once: the resend answers duplicate with the first offset", async () => {
    const topic = await createTopic({ queues: 1 });
    const s = await openSession(topic, 0);
    await s.next("ready");
    s.send({ type: "send", id: 1, messages: [{ body: "x", msgId: "dup-1" }] });
    await s.next("sent");
    s.close();
    const again = await openSession(topic, 0);
    await again.next("ready");
    again.send({ type: "send", id: 1, messages: [{ body: "x", msgId: "dup-1" }] });
    const r = (await again.next("sent")).results[0];
    expect(r).toMatchObject({ status: "duplicate", offset: 0 });
    expect((await pullAll(topic)).messages).toHaveLength(1);
    again.close();
  });
});

describe("session: dedup per sender", () => {
  it("dedups a session send against the same token's HTTP send, not another token's", async () => {
    const topic = await createTopic({ queues: 1 });
    const alice = await mint({ sub: "alice", publish: [topic] });
    const bob = await mint({ sub: "bob", publish: [topic] });
    const sent = await api(
      "POST",
      `/v1/topics/${topic}/messages`,
      { messages: [{ body: "x", msgId: "same-id" }] },
      { authorization: `Bearer ${alice}`, "content-type": "application/json" },
    );
    expect(sent.body.results[0].status).toBe("stored");
    const a = await openSession(topic, 0, { token: alice });
    await a.next("ready");
    a.send({ type: "send", id: 1, messages: [{ body: "x", msgId: "same-id" }] });
    expect((await a.next("sent")).results[0]).toMatchObject({ status: "duplicate", offset: 0 });
    const b = await openSession(topic, 0, { token: bob });
    await b.next("ready");
    b.send({ type: "send", id: 1, messages: [{ body: "x", msgId: "same-id" }] });
    expect((await b.next("sent")).results[0]).toMatchObject({ status: "stored", offset: 1 });
    a.close();
    b.close();
  });
});

describe("session: receive mode", () => {
  it("pushes a message appended after subscribing, with a receipt an ack frame settles", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    const consumer = await openSession(topic, 0, { group });
    await consumer.next("ready");
    consumer.send({ type: "subscribe", id: 1, mode: "receive", credit: 10 });
    await consumer.next("subscribed");
    const producer = await openSession(topic, 0);
    await producer.next("ready");
    producer.send({ type: "send", id: 1, messages: [{ body: "hello" }] });
    const pushed = await consumer.next("messages");
    expect(pushed.messages.map((m: any) => m.body)).toEqual(["hello"]);
    const receipt = pushed.messages[0].receipt;
    expect(receipt).toMatch(new RegExp(`^r1\\.${topic}\\.${group}\\.0\\.0\\.`));
    consumer.send({ type: "ack", id: 2, receipts: [receipt] });
    expect((await consumer.next("acked")).results).toEqual([{ receipt, ok: true }]);
    consumer.close();
    producer.close();
  });

  it("pushes what was there before subscribing, at most the credit, and more when credited", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "1" }, { body: "2" }, { body: "3" }],
    });
    const s = await openSession(topic, 0, { group });
    await s.next("ready");
    s.send({ type: "subscribe", id: 1, mode: "receive", credit: 2 });
    await s.next("subscribed");
    const first = await s.next("messages");
    expect(first.messages.map((m: any) => m.body)).toEqual(["1", "2"]);
    s.send({ type: "credit", n: 5 });
    const second = await s.next("messages");
    expect(second.messages.map((m: any) => m.body)).toEqual(["3"]);
    s.close();
  });
});

describe("session: pull mode", () => {
  it("pushes from an offset in order with nextOffset, and commits an offset for its group", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "a" }, { body: "b" }] });
    const s = await openSession(topic, 0, { group });
    await s.next("ready");
    s.send({ type: "subscribe", id: 1, mode: "pull", offset: 1, credit: 100 });
    expect((await s.next("subscribed")).offset).toBe(1);
    const m = await s.next("messages");
    expect(m.messages.map((x: any) => x.body)).toEqual(["b"]);
    expect(m.nextOffset).toBe(2);
    await api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "c" }] });
    const pushed = await s.next("messages");
    expect(pushed.messages.map((x: any) => x.offset)).toEqual([2]);
    s.send({ type: "commit", id: 2, offset: 3 });
    expect(await s.next("committed")).toEqual({ type: "committed", id: 2, offset: 3 });
    // The commit is lazy: it lands with the next write or within LAZY_MS.
    let committed = -1;
    for (let i = 0; i < 100 && committed !== 3; i++) {
      committed = await committedOf(topic, group);
      if (committed !== 3) await new Promise((r) => setTimeout(r, 10));
    }
    expect(committed).toBe(3);
    s.close();
  });
});
