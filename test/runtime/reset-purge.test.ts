/**
 * Backtracking (the seed's point 6): reset a group's offsets by store time to
 * the millisecond, to earliest or latest, forward or backward. And purge:
 * every stored message gone, config kept, offsets moved to the new minOffset.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, createTopic, shardStub, unique } from "./helpers.ts";
import { countRows, spreadStoreTimes } from "./storage-sql.ts";

async function sendTo(topic: string, queue: number, n: number, prefix = "m") {
  const messages = Array.from({ length: n }, (_, i) => ({ body: `${prefix}${i}` }));
  const r = await api("POST", `/v1/topics/${topic}/messages?queue=${queue}`, { messages });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.results as { msgId: string; offset: number }[];
}

/** Sets the store time of every message in a queue to `base + offset * step` ms. */
async function setStoreTimes(topic: string, queue: number, base: number, step: number) {
  await spreadStoreTimes(topic, queue, base, step);
}

const reset = (group: string, topic: string, body: unknown) =>
  api("POST", `/v1/groups/${group}/topics/${topic}/offsets/reset`, body);

async function offsets(group: string, topic: string): Promise<number[]> {
  const r = await api("GET", `/v1/groups/${group}/topics/${topic}/offsets`);
  expect(r.status).toBe(200);
  return r.body.offsets.map((o: { offset: number }) => o.offset);
}

async function commit(group: string, topic: string, queue: number, offset: number) {
  const r = await api("PUT", `/v1/groups/${group}/topics/${topic}/queues/${queue}/offset`, {
    offset,
  });
  expect(r.status).toBe(200);
}

describe("offset reset by timestamp", () => {
  it("moves to the first message stored at or after the timestamp, to the millisecond, backward and forward", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await sendTo(topic, 0, 6);
    const base = Date.now() - 100_000;
    await setStoreTimes(topic, 0, base, 10); // offsets 0..5 at base, base+10 … base+50
    await commit(group, topic, 0, 5);

    const back = await reset(group, topic, { timestamp: base + 20 });
    expect(back.status).toBe(200);
    expect(back.body).toEqual({ offsets: [{ queue: 0, offset: 2 }] });
    expect(await offsets(group, topic)).toEqual([2]);
    // One millisecond later is past offset 2: the first stored at or after it is 3.
    expect((await reset(group, topic, { timestamp: base + 21 })).body.offsets).toEqual([
      { queue: 0, offset: 3 },
    ]);
    expect((await reset(group, topic, { timestamp: base + 29 })).body.offsets).toEqual([
      { queue: 0, offset: 3 },
    ]);
    expect((await reset(group, topic, { timestamp: base + 30 })).body.offsets).toEqual([
      { queue: 0, offset: 3 },
    ]);
    // Forward past everything: the end of the queue.
    expect((await reset(group, topic, { timestamp: base + 51 })).body.offsets).toEqual([
      { queue: 0, offset: 6 },
    ]);
    // Backward before everything: the start.
    expect((await reset(group, topic, { timestamp: 0 })).body.offsets).toEqual([
      { queue: 0, offset: 0 },
    ]);
    await reset(group, topic, { timestamp: base + 40 });
    // A pull by group continues from the reset offset.
    const pulled = await api("GET", `/v1/topics/${topic}/queues/0/messages?group=${group}`);
    expect(pulled.body.messages.map((m: { body: string }) => m.body)).toEqual(["m4", "m5"]);
  });

  it("resets each queue by its own store times", async () => {
    const topic = await createTopic({ queues: 3 });
    const group = unique("g");
    await sendTo(topic, 0, 4);
    await sendTo(topic, 1, 4);
    // queue 2 stays empty
    const base = Date.now() - 100_000;
    await setStoreTimes(topic, 0, base, 10); // 0, 10, 20, 30
    await setStoreTimes(topic, 1, base + 5, 1); // 5, 6, 7, 8
    const r = await reset(group, topic, { timestamp: base + 7 });
    expect(r.body.offsets).toEqual([
      { queue: 0, offset: 1 },
      { queue: 1, offset: 2 },
      { queue: 2, offset: 0 },
    ]);
    expect(await offsets(group, topic)).toEqual([1, 2, 0]);
  });

  it("rewinds a receive group: its receipts end and messages are handed out again", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await sendTo(topic, 0, 3);
    const base = Date.now() - 100_000;
    await setStoreTimes(topic, 0, base, 10);
    const first = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 10 });
    expect(first.body.messages).toHaveLength(3);
    const empty = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 10 });
    expect(empty.body.messages).toHaveLength(0);

    expect((await reset(group, topic, { timestamp: base + 10 })).body.offsets).toEqual([
      { queue: 0, offset: 1 },
    ]);
    const again = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 10 });
    expect(
      again.body.messages.map((m: { body: string; reconsumeTimes: number }) => [
        m.body,
        m.reconsumeTimes,
      ]),
    ).toEqual([
      ["m1", 0],
      ["m2", 0],
    ]);
    const ack = await api("POST", `/v1/groups/${group}/topics/${topic}/ack`, {
      receipts: first.body.messages.map((m: { receipt: string }) => m.receipt),
    });
    expect(ack.body.results.map((r: { error?: { code: string } }) => r.error?.code)).toEqual([
      "RECEIPT_EXPIRED",
      "RECEIPT_EXPIRED",
      "RECEIPT_EXPIRED",
    ]);
  });
});

describe("offset reset to earliest and latest", () => {
  it("moves to minOffset or maxOffset, in either direction", async () => {
    const topic = await createTopic({
      queues: 1,
      maxBacklogMessages: 4,
      overflowPolicy: "drop-oldest",
    });
    const group = unique("g");
    await sendTo(topic, 0, 6); // offsets 2..5 remain
    await commit(group, topic, 0, 3);
    expect((await reset(group, topic, { to: "latest" })).body.offsets).toEqual([
      { queue: 0, offset: 6 },
    ]);
    expect((await reset(group, topic, { to: "earliest" })).body.offsets).toEqual([
      { queue: 0, offset: 2 },
    ]);
    expect(await offsets(group, topic)).toEqual([2]);
    const pulled = await api("GET", `/v1/topics/${topic}/queues/0/messages?group=${group}`);
    expect(pulled.body).toMatchObject({ skipped: 0 });
    expect(pulled.body.messages.map((m: { offset: number }) => m.offset)).toEqual([2, 3, 4, 5]);
    expect((await reset(group, topic, { to: "latest" })).body.offsets).toEqual([
      { queue: 0, offset: 6 },
    ]);
    await sendTo(topic, 0, 1, "new");
    const after = await api("GET", `/v1/topics/${topic}/queues/0/messages?group=${group}`);
    expect(after.body.messages.map((m: { body: string }) => m.body)).toEqual(["new0"]);
  });

  it("creates the group when it is new", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    await sendTo(topic, 1, 2);
    const r = await reset(group, topic, { to: "latest" });
    expect(r.status).toBe(200);
    expect(r.body.offsets).toEqual([
      { queue: 0, offset: 0 },
      { queue: 1, offset: 2 },
    ]);
    const g = await api("GET", `/v1/groups/${group}`);
    expect(g.status).toBe(200);
    expect(g.body.topics[topic].map((s: { offset: number }) => s.offset)).toEqual([0, 2]);
  });
});

describe("offset reset with bad input", () => {
  it("answers 400 for bad timestamps and bodies, and changes nothing", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await sendTo(topic, 0, 4);
    await commit(group, topic, 0, 3);
    const bad: unknown[] = [
      { timestamp: -1 },
      { timestamp: 1.5 },
      { timestamp: "1700000000000" },
      { timestamp: null },
      { timestamp: 9e15 },
      { timestamp: 1, to: "earliest" },
      { to: "middle" },
      { to: 0 },
      {},
      [],
      "latest",
    ];
    for (const body of bad) {
      const r = await reset(group, topic, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
    }
    const malformed = await reset(group, topic, "{not json");
    expect(malformed.status).toBe(400);
    expect(await offsets(group, topic)).toEqual([3]);
  });

  it("answers 404 for an unknown topic and 400 for invalid names", async () => {
    const group = unique("g");
    const r = await reset(group, unique("none"), { to: "earliest" });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("TOPIC_NOT_FOUND");
    const topic = await createTopic({ queues: 1 });
    expect((await reset("bad.name", topic, { to: "earliest" })).body.error.code).toBe(
      "INVALID_NAME",
    );
    expect((await reset(group, "bad.name", { to: "earliest" })).body.error.code).toBe(
      "INVALID_NAME",
    );
    // Nothing was created for the group by the failed calls.
    const groups = (await api("GET", "/v1/groups")).body.groups.map(
      (g: { group: string }) => g.group,
    );
    expect(groups).not.toContain(group);
  });
});

describe("purge", () => {
  it("deletes every stored message, keeps the config and moves group offsets to the new minOffset", async () => {
    const topic = await createTopic({ queues: 2, retentionMs: 3_600_000 });
    const puller = unique("p");
    const popper = unique("r");
    const idle = unique("i");
    await sendTo(topic, 0, 3);
    await sendTo(topic, 1, 5);
    await commit(puller, topic, 0, 1);
    await commit(puller, topic, 1, 4);
    const got = await api("POST", `/v1/groups/${popper}/topics/${topic}/receive`, { max: 2 });
    expect(got.body.messages).toHaveLength(2);
    await reset(idle, topic, { to: "earliest" });
    const before = (await api("GET", `/v1/topics/${topic}`)).body;

    const r = await api("POST", `/v1/topics/${topic}/purge`);
    expect(r.status).toBe(200);
    expect(r.body.queues).toEqual([
      { queue: 0, minOffset: 3 },
      { queue: 1, minOffset: 5 },
    ]);

    const after = (await api("GET", `/v1/topics/${topic}`)).body;
    const { queueStats: statsBefore, ...configBefore } = before;
    const { queueStats: statsAfter, ...configAfter } = after;
    expect(configAfter).toEqual(configBefore);
    expect(statsBefore.map((s: { messages: number }) => s.messages)).toEqual([3, 5]);
    expect(statsAfter).toEqual([
      expect.objectContaining({ queue: 0, minOffset: 3, maxOffset: 3, messages: 0, bytes: 0 }),
      expect.objectContaining({ queue: 1, minOffset: 5, maxOffset: 5, messages: 0, bytes: 0 }),
    ]);
    for (const g of [puller, popper, idle]) {
      expect(await offsets(g, topic), g).toEqual([3, 5]);
      const stats = (await api("GET", `/v1/groups/${g}`)).body.topics[topic];
      expect(stats.map((s: { lag: number; inflight: number }) => [s.lag, s.inflight])).toEqual([
        [0, 0],
        [0, 0],
      ]);
    }
    // The receipts handed out before the purge are gone.
    const ack = await api("POST", `/v1/groups/${popper}/topics/${topic}/ack`, {
      receipts: got.body.messages.map((m: { receipt: string }) => m.receipt),
    });
    expect(
      ack.body.results.every(
        (x: { error?: { code: string } }) => x.error?.code === "RECEIPT_EXPIRED",
      ),
    ).toBe(true);
    // A pull from 0 reports the purged messages as skipped.
    const pulled = await api("GET", `/v1/topics/${topic}/queues/1/messages?offset=0`);
    expect(pulled.body).toMatchObject({ messages: [], skipped: 5, minOffset: 5, maxOffset: 5 });
    // Offsets go on from where they were; consumers see only new messages.
    const [next] = await sendTo(topic, 1, 1, "after");
    expect(next!.offset).toBe(5);
    const fresh = await api("POST", `/v1/groups/${popper}/topics/${topic}/receive`, { max: 10 });
    expect(fresh.body.messages.map((m: { body: string }) => m.body)).toEqual(["after0"]);
    const byPull = await api("GET", `/v1/topics/${topic}/queues/1/messages?group=${puller}`);
    expect(byPull.body.messages.map((m: { body: string }) => m.body)).toEqual(["after0"]);
  });

  it("also removes scheduled messages that are not yet due", async () => {
    const topic = await createTopic({ queues: 1 });
    const r = await api("POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [{ body: "later", deliverAt: Date.now() + 1000 }, { body: "now" }],
    });
    expect(r.body.results.map((x: { status: string }) => x.status)).toEqual([
      "scheduled",
      "stored",
    ]);
    expect((await api("POST", `/v1/topics/${topic}/purge`)).status).toBe(200);
    // No timer is left to move it into the log later.
    const timers = await countRows(topic, "scheduled");
    expect(timers).toBe(0);
    await runDurableObjectAlarm(shardStub(topic, 0));
    const stats = (await api("GET", `/v1/topics/${topic}`)).body.queueStats[0];
    expect(stats).toMatchObject({ minOffset: 1, maxOffset: 1, messages: 0, scheduled: 0 });
  });

  it("keeps deduplicating msgIds sent before the purge", async () => {
    const topic = await createTopic({ queues: 1 });
    const send = (body: string, msgId: string, extra: Record<string, unknown> = {}) =>
      api("POST", `/v1/topics/${topic}/messages?queue=0`, {
        messages: [{ body, msgId, ...extra }],
      });
    expect((await send("a", "id-a")).body.results[0].status).toBe("stored");
    expect((await send("s", "id-s", { delayMs: 60_000 })).body.results[0].status).toBe("scheduled");
    expect((await api("POST", `/v1/topics/${topic}/purge`)).status).toBe(200);
    // A producer retrying either send gets "duplicate"; nothing comes back.
    expect((await send("a", "id-a")).body.results[0]).toMatchObject({
      status: "duplicate",
      offset: 0,
    });
    expect((await send("s", "id-s")).body.results[0]).toMatchObject({
      status: "duplicate",
      offset: null,
    });
    expect((await api("GET", `/v1/topics/${topic}`)).body.queueStats[0]).toMatchObject({
      messages: 0,
      scheduled: 0,
      maxOffset: 1,
    });
    expect((await api("GET", `/v1/topics/${topic}/messages/id-a`)).status).toBe(404);
    expect((await send("b", "id-b")).body.results[0]).toMatchObject({
      status: "stored",
      offset: 1,
    });
    // The purged scheduled message is gone, not "already delivered".
    expect((await api("DELETE", `/v1/topics/${topic}/messages/id-s`)).body.error.code).toBe(
      "MESSAGE_NOT_FOUND",
    );
  });

  it("answers 404 for an unknown topic and 400 for an invalid name", async () => {
    const r = await api("POST", `/v1/topics/${unique("none")}/purge`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("TOPIC_NOT_FOUND");
    expect((await api("POST", "/v1/topics/bad.name/purge")).body.error.code).toBe("INVALID_NAME");
  });
});
