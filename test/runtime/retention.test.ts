/**
 * Time retention: the shard's alarm deletes messages older than the topic's
 * `retentionMs` in bounded batches, `minOffset` moves, and a consumer behind
 * it is told (pull `skipped`, group stats `lostToRetention`).
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, createTopic, shardStub, unique } from "./helpers.ts";
import { ageStored } from "./storage-sql.ts";

async function sendBodies(topic: string, n: number, from = 0, extra: Record<string, unknown> = {}) {
  const messages = Array.from({ length: n }, (_, i) => ({ body: `m${from + i}`, ...extra }));
  const r = await api("POST", `/v1/topics/${topic}/messages?queue=0`, { messages });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.results as { msgId: string; offset: number; status: string }[];
}

/** Moves the store time of the messages below `below` an hour into the past. */
async function age(topic: string, below: number): Promise<void> {
  await ageStored(topic, 3_600_000, { below });
}

async function pullFrom(topic: string, offset: number, max = 100) {
  const r = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=${offset}&max=${max}`);
  expect(r.status).toBe(200);
  return r.body as {
    messages: { offset: number; body: string }[];
    nextOffset: number;
    minOffset: number;
    maxOffset: number;
    skipped: number;
  };
}

describe("retention", () => {
  it("deletes expired messages on the alarm, moves minOffset and reports the gap as skipped", async () => {
    const topic = await createTopic({ queues: 1, retentionMs: 1000 });
    await sendBodies(topic, 5);
    await age(topic, 3);
    expect(await runDurableObjectAlarm(shardStub(topic, 0))).toBe(true);
    const r = await pullFrom(topic, 0);
    expect(r).toMatchObject({ minOffset: 3, maxOffset: 5, skipped: 3, nextOffset: 5 });
    expect(r.messages.map((m) => m.offset)).toEqual([3, 4]);
    const stats = (await api("GET", `/v1/topics/${topic}`)).body.queueStats[0];
    expect(stats).toMatchObject({ minOffset: 3, maxOffset: 5, messages: 2, bytes: 4 });
    // Offsets continue densely after the sweep.
    const [next] = await sendBodies(topic, 1, 5);
    expect(next!.offset).toBe(5);
  });

  it("never deletes a message before its retention has passed", async () => {
    const topic = await createTopic({ queues: 1, retentionMs: 60_000 });
    await sendBodies(topic, 3);
    // Fire the alarm early (as a restarted or premature alarm would): nothing goes.
    await runDurableObjectAlarm(shardStub(topic, 0));
    await runDurableObjectAlarm(shardStub(topic, 0));
    const r = await pullFrom(topic, 0);
    expect(r.messages.map((m) => m.body)).toEqual(["m0", "m1", "m2"]);
    expect(r).toMatchObject({ minOffset: 0, skipped: 0 });
  });

  it("deletes in bounded batches and re-arms until the backlog is swept", async () => {
    const topic = await createTopic({ queues: 1, retentionMs: 1000 });
    for (let i = 0; i < 6; i++) await sendBodies(topic, 1000, i * 1000);
    await age(topic, 6000);
    const stub = shardStub(topic, 0);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const first = await pullFrom(topic, 0, 1);
    // One alarm run deletes at most one batch, then fires again.
    expect(first.minOffset).toBeGreaterThan(0);
    expect(first.minOffset).toBeLessThan(6000);
    for (let i = 0; i < 5 && (await pullFrom(topic, 0, 1)).minOffset < 6000; i++) {
      expect(await runDurableObjectAlarm(stub)).toBe(true);
    }
    const done = await pullFrom(topic, 0, 1);
    expect(done).toMatchObject({ minOffset: 6000, maxOffset: 6000, skipped: 6000, messages: [] });
    expect((await api("GET", `/v1/topics/${topic}`)).body.queueStats[0]).toMatchObject({
      messages: 0,
      bytes: 0,
    });
  });

  it("reports a group's committed offset below minOffset as lost to retention", async () => {
    const topic = await createTopic({ queues: 1, retentionMs: 1000 });
    const group = unique("g");
    await sendBodies(topic, 6);
    const commit = await api("PUT", `/v1/groups/${group}/topics/${topic}/queues/0/offset`, {
      offset: 1,
    });
    expect(commit.status).toBe(200);
    await age(topic, 4);
    await runDurableObjectAlarm(shardStub(topic, 0));
    const g = await api("GET", `/v1/groups/${group}`);
    expect(g.status).toBe(200);
    expect(g.body.topics[topic][0]).toMatchObject({
      queue: 0,
      offset: 1,
      maxOffset: 6,
      lostToRetention: 3,
    });
    // Pulling from the committed offset reports the same gap, then continues.
    const r = await api("GET", `/v1/topics/${topic}/queues/0/messages?group=${group}`);
    expect(r.body).toMatchObject({ skipped: 3, minOffset: 4 });
    expect(r.body.messages.map((m: { offset: number }) => m.offset)).toEqual([4, 5]);
    // A group that has kept up is not reported.
    const current = unique("g");
    await api("PUT", `/v1/groups/${current}/topics/${topic}/queues/0/offset`, { offset: 5 });
    const c = await api("GET", `/v1/groups/${current}`);
    expect(c.body.topics[topic][0].lostToRetention).toBeUndefined();
  });

  it("drops in-flight receipts and dead letters of swept messages", async () => {
    const topic = await createTopic({ queues: 1, retentionMs: 1000 });
    const group = unique("g");
    await sendBodies(topic, 3);
    const got = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 2 });
    expect(got.body.messages).toHaveLength(2);
    await age(topic, 3);
    await runDurableObjectAlarm(shardStub(topic, 0));
    const stats = (await api("GET", `/v1/groups/${group}`)).body.topics[topic][0];
    expect(stats).toMatchObject({ inflight: 0, retrying: 0, dlq: 0 });
    const ack = await api("POST", `/v1/groups/${group}/topics/${topic}/ack`, {
      receipts: got.body.messages.map((m: { receipt: string }) => m.receipt),
    });
    expect(
      ack.body.results.every(
        (r: { error?: { code: string } }) => r.error?.code === "RECEIPT_EXPIRED",
      ),
    ).toBe(true);
  });

  it("keeps deduplicating a msgId after retention removed its message", async () => {
    const topic = await createTopic({ queues: 1, retentionMs: 1000 });
    const msgId = unique("id");
    const send = () =>
      api("POST", `/v1/topics/${topic}/messages?queue=0`, { messages: [{ body: "x", msgId }] });
    expect((await send()).body.results[0]).toMatchObject({ offset: 0, status: "stored" });
    await age(topic, 1);
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect((await pullFrom(topic, 0)).minOffset).toBe(1);
    expect((await send()).body.results[0]).toMatchObject({ offset: 0, status: "duplicate" });
    expect((await pullFrom(topic, 0)).maxOffset).toBe(1);
    // The query by id no longer finds the message itself.
    expect((await api("GET", `/v1/topics/${topic}/messages/${msgId}`)).status).toBe(404);
  });

  it("arms the retention sweep even when a later timer is already armed", async () => {
    const topic = await createTopic({ queues: 1, retentionMs: 1000 });
    // A message scheduled an hour ahead arms the alarm for then.
    const scheduled = await api("POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [{ body: "later", deliverAt: Date.now() + 3_600_000 }],
    });
    expect(scheduled.body.results[0].status).toBe("scheduled");
    const before = Date.now();
    await sendBodies(topic, 1);
    const alarm = await runInDurableObject(shardStub(topic, 0), (_i, state) =>
      state.storage.getAlarm(),
    );
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(before + 1000 + 5000);
  });

  it("sweeps on its own alarm within retentionMs + 5 s", async () => {
    const topic = await createTopic({ queues: 1, retentionMs: 1000 });
    await sendBodies(topic, 2);
    const deadline = Date.now() + 8000;
    let r = await pullFrom(topic, 0);
    while (r.minOffset < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      r = await pullFrom(topic, 0);
    }
    expect(r).toMatchObject({ minOffset: 2, maxOffset: 2, skipped: 2, messages: [] });
  });
});
