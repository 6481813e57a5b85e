/**
 * Work proportional to a backlog never runs in one request: a purge and a
 * resend of every dead letter answer at once (the purge's `minOffset` is
 * known at once) and go on in bounded steps through the shard's alarm, while
 * every read already sees the result.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BATCH } from "../../src/broker/timers/timing.ts";
import { api, createTopic, shardStub, unique } from "./helpers.ts";
import { bearer, mint } from "./token-helpers.ts";
import { countRows, deadLetterAll, passTimeForScheduled, rowsLeftBy } from "./storage-sql.ts";

/** Sends `n` small messages to queue 0, a thousand per request, some with a key. */
async function fill(topic: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 1000) {
    const messages = Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({
      body: `m${i + j}`,
      ...((i + j) % 10 === 0 && { keys: ["k"] }),
    }));
    const r = await api("POST", `/v1/topics/${topic}/messages?queue=0`, { messages });
    expect(r.status).toBe(200);
  }
}

/** Fires the shard's alarm until `done` holds (at most `runs` times). */
async function alarmsUntil(topic: string, done: () => Promise<boolean>, runs = 50) {
  for (let i = 0; i < runs && !(await done()); i++) {
    await runDurableObjectAlarm(shardStub(topic, 0));
  }
  expect(await done()).toBe(true);
}

describe("bounded steps", () => {
  it("purges a large queue at once for every reader, and deletes it in steps through the alarm", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    const n = 2 * BATCH.purge + 500;
    await fill(topic, n);
    await api("POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [{ body: "later", delayMs: 60_000 }],
    });
    const held = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 5 });
    expect(held.body.messages).toHaveLength(5);

    // The purge answers its new minOffset at once, having deleted one bounded step.
    const purge = await rowsLeftBy(topic, "log", (shard) => shard.purge());
    expect(purge.result).toEqual({ ok: true, value: { minOffset: n } });
    expect(purge.rows).toBe(n - BATCH.purge);
    // Every reader sees an empty queue already.
    const pulled = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0&max=100`);
    expect(pulled.body).toMatchObject({ messages: [], minOffset: n, maxOffset: n, skipped: n });
    expect((await api("GET", `/v1/topics/${topic}/messages?key=k`)).body.messages).toEqual([]);
    const stats = (await api("GET", `/v1/topics/${topic}`)).body.queueStats[0];
    expect(stats).toMatchObject({ messages: 0, bytes: 0, scheduled: 0, minOffset: n });
    const again = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 5 });
    expect(again.body.messages).toEqual([]);
    const ack = await api("POST", `/v1/groups/${group}/topics/${topic}/ack`, {
      receipts: [held.body.messages[0].receipt],
    });
    expect(ack.body.results[0].error.code).toBe("RECEIPT_EXPIRED");
    const groupStats = (await api("GET", `/v1/groups/${group}`)).body.topics[topic][0];
    expect(groupStats).toMatchObject({ inflight: 0, offset: n, lag: 0 });
    // New messages come after the mark and are seen at once.
    const sent = await api("POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [{ body: "new", keys: ["k"] }],
    });
    expect(sent.body.results[0].offset).toBe(n);
    const fresh = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 5 });
    expect(fresh.body.messages.map((m: { body: string }) => m.body)).toEqual(["new"]);

    await alarmsUntil(topic, async () => (await countRows(topic, "log")) === 1);
    expect(await countRows(topic, "scheduled")).toBe(0);
    // A message scheduled once the cleanup emptied its table is not taken for a purged one.
    const later = await api("POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [{ body: "scheduled after", delayMs: 60_000 }],
    });
    expect(later.body.results[0].status).toBe("scheduled");
    expect((await api("GET", `/v1/topics/${topic}`)).body.queueStats[0].scheduled).toBe(1);
    await passTimeForScheduled(topic, 120_000);
    await runDurableObjectAlarm(shardStub(topic, 0));
    const moved = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=${n}&max=10`);
    expect(moved.body.messages.map((m: { body: string }) => m.body)).toEqual([
      "new",
      "scheduled after",
    ]);
    expect(await countRows(topic, "msg_key")).toBe(1);
    expect(await countRows(topic, "inflight")).toBe(1);
    const byKey = await api("GET", `/v1/topics/${topic}/messages?key=k`);
    expect(byKey.body.messages.map((m: { body: string }) => m.body)).toEqual(["new"]);
  });

  it("resends every dead letter in steps: the first at once, the rest through the alarm", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    const n = 2 * BATCH.resend + 300;
    await fill(topic, n);
    // The group consumes the topic (so the DLQ views find it), then every message is dead to it.
    await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 1 });
    await api("POST", `/v1/groups/${group}/topics/${topic}/offsets/reset`, { to: "latest" });
    expect(await deadLetterAll(topic, group)).toBeGreaterThanOrEqual(n);

    const r = await api("POST", `/v1/groups/${group}/dlq/resend`, {});
    expect(r.status).toBe(200);
    expect(r.body.resent).toHaveLength(BATCH.resend);
    expect(r.body.continuing).toBe(true);
    // The request itself took one step only.
    await deadLetterAll(topic, group);
    const step = await rowsLeftBy(topic, "dlq", (shard) => shard.resendDeadLetters(group, null));
    expect(step.result).toMatchObject({ ok: true, value: { continuing: true } });
    expect(step.rows).toBe(n - BATCH.resend);

    await alarmsUntil(topic, async () => (await countRows(topic, "dlq")) === 0);
    const received = new Map<string, string>();
    for (let i = 0; i < 10 && received.size < n; i++) {
      const got = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 1000 });
      for (const m of got.body.messages) received.set(m.body, m.msgId);
    }
    expect(received.size).toBe(n);
    // Named dead letters are found by id and resent at once, with the contract's answer.
    await deadLetterAll(topic, group);
    const one = received.get("m1")!;
    const named = await api("POST", `/v1/groups/${group}/dlq/resend`, { msgIds: [one, "nope"] });
    expect(named.body).toEqual({ resent: [one] });
  });

  it("resends a named dead letter a scoped producer sent (its msgId in that sender's space)", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    const producer = bearer(await mint({ sub: unique("producer"), publish: [topic] }));
    const msgId = `${topic}-own-id`;
    const sent = await api(
      "POST",
      `/v1/topics/${topic}/messages?queue=0`,
      { messages: [{ body: "scoped", msgId }] },
      producer,
    );
    expect(sent.status).toBe(200);
    await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 1 });
    await api("POST", `/v1/groups/${group}/topics/${topic}/offsets/reset`, { to: "latest" });
    await deadLetterAll(topic, group);
    const r = await api("POST", `/v1/groups/${group}/dlq/resend`, { msgIds: [msgId] });
    expect(r.body).toEqual({ resent: [msgId] });
    expect(await countRows(topic, "dlq")).toBe(0);
  });
});
