/**
 * Retries and dead letters: invariant 4's second half. A nacked or lapsed
 * message comes back after its delay with reconsumeTimes + 1, at most
 * maxReconsumeTimes + 1 deliveries in all, then lands in the group's
 * dead-letter queue exactly once, from where it can be resent.
 */
import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";
import {
  ack,
  deadLetters,
  drain,
  fireAlarm,
  groupStats,
  inflightRows,
  lapse,
  makeDue,
  nack,
  receipts,
  receive,
  send,
  statTotal,
} from "./consume-helpers.ts";

async function putGroup(config: Record<string, unknown>): Promise<string> {
  const group = unique("g");
  const r = await api("PUT", `/v1/groups/${group}`, config);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return group;
}

describe("nack", () => {
  it("retries at once with delayMs 0, reconsumeTimes + 1", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["again"]);
    const [m] = await receive(group, topic);
    expect(await nack(group, topic, [m.receipt], 0)).toEqual([{ receipt: m.receipt, ok: true }]);
    const [again] = await receive(group, topic);
    expect(again).toMatchObject({ msgId: m.msgId, reconsumeTimes: 1 });
  });

  it("holds a message back for the given delayMs", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["later"]);
    const [m] = await receive(group, topic);
    const before = Date.now();
    await nack(group, topic, [m.receipt], 60_000);
    const after = Date.now();
    const [row] = await inflightRows(topic, 0, group);
    expect(row!.state).toBe(1);
    expect(row!.visible_at).toBeGreaterThanOrEqual(before + 60_000);
    expect(row!.visible_at).toBeLessThanOrEqual(after + 60_000);
    expect(await receive(group, topic)).toEqual([]);
    expect(await statTotal(group, topic, "retrying")).toBe(1);
    await makeDue(topic, 0, group);
    const [again] = await receive(group, topic);
    expect(again).toMatchObject({ msgId: m.msgId, reconsumeTimes: 1 });
  });

  it("waits the group's retryDelaysMs by reconsumeTimes, the last one repeating", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await putGroup({ retryDelaysMs: [20_000, 50_000] });
    await send(topic, ["backoff"]);
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      const [m] = await receive(group, topic);
      expect(m.reconsumeTimes).toBe(i);
      const before = Date.now();
      await nack(group, topic, [m.receipt]);
      const [row] = await inflightRows(topic, 0, group);
      delays.push(Math.round((row!.visible_at - before) / 10_000) * 10_000);
      await makeDue(topic, 0, group);
    }
    expect(delays).toEqual([20_000, 50_000, 50_000]);
  });

  it("waits 10 s after the first failure by default", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["default"]);
    const [m] = await receive(group, topic);
    const before = Date.now();
    await nack(group, topic, [m.receipt]);
    const [row] = await inflightRows(topic, 0, group);
    expect(Math.round((row!.visible_at - before) / 1000)).toBe(10);
  });

  it("arms the shard's alarm for the retry", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["x"]);
    const [m] = await receive(group, topic);
    await nack(group, topic, [m.receipt], 5000);
    await makeDue(topic, 0, group);
    expect(await fireAlarm(topic, 0)).toBe(true);
    expect((await receive(group, topic)).map((x) => x.reconsumeTimes)).toEqual([1]);
  });
});

describe("timers wake waiting receives", () => {
  it("hands a retry to a waiting receive when its delay passes", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    await send(topic, ["soon"], 1);
    const [m] = await receive(group, topic);
    await nack(group, topic, [m.receipt], 1000);
    const got = await receive(group, topic, { waitMs: 5000 });
    expect(got.map((x) => [x.body, x.reconsumeTimes])).toEqual([["soon", 1]]);
  });

  it("hands a lapsed message to a waiting receive when its invisible time passes", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    await send(topic, ["dropped"], 0);
    await receive(group, topic, { invisibleMs: 1000 });
    const got = await receive(group, topic, { waitMs: 5000 });
    expect(got.map((x) => [x.body, x.reconsumeTimes])).toEqual([["dropped", 1]]);
  });
});

describe("dead letters", () => {
  it("delivers at most maxReconsumeTimes + 1 times, then dead-letters exactly once", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await putGroup({ maxReconsumeTimes: 2 });
    const [sent] = await send(topic, ["poison"]);
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      const got = await receive(group, topic);
      if (got.length === 0) break;
      seen.push(got[0].reconsumeTimes);
      expect(await nack(group, topic, receipts(got), 0)).toMatchObject([{ ok: true }]);
    }
    expect(seen).toEqual([0, 1, 2]);
    const dlq = await deadLetters(group);
    expect(dlq).toHaveLength(1);
    expect(dlq[0]).toMatchObject({ msgId: sent.msgId, body: "poison", topic, reconsumeTimes: 2 });
    expect(dlq[0].receipt).toBeUndefined();
    const [s] = await groupStats(group, topic);
    expect(s).toMatchObject({ inflight: 0, retrying: 0, dlq: 1, lag: 0, offset: 1 });
    await lapse(topic, 0, group);
    expect(await deadLetters(group)).toHaveLength(1);
    expect(await receive(group, topic)).toEqual([]);
  });

  it("dead-letters once when the last delivery lapses instead of being nacked", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await putGroup({ maxReconsumeTimes: 1 });
    await send(topic, ["crashy"]);
    expect((await receive(group, topic)).map((m) => m.reconsumeTimes)).toEqual([0]);
    await lapse(topic, 0, group);
    expect((await receive(group, topic)).map((m) => m.reconsumeTimes)).toEqual([1]);
    await lapse(topic, 0, group);
    // The alarm again, and a receive: neither moves it twice.
    await makeDue(topic, 0, group);
    await fireAlarm(topic, 0);
    expect(await receive(group, topic)).toEqual([]);
    const dlq = await deadLetters(group);
    expect(dlq.map((m) => [m.body, m.reconsumeTimes])).toEqual([["crashy", 1]]);
    expect(await statTotal(group, topic, "dlq")).toBe(1);
  });

  it("dead-letters once when a receive finds the last delivery lapsed before the alarm", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await putGroup({ maxReconsumeTimes: 0 });
    await send(topic, ["once only"]);
    await receive(group, topic);
    await makeDue(topic, 0, group);
    expect(await receive(group, topic)).toEqual([]);
    await fireAlarm(topic, 0);
    expect(await receive(group, topic)).toEqual([]);
    expect(await deadLetters(group)).toHaveLength(1);
  });

  it("dead-letters at the first nack when maxReconsumeTimes is 0", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await putGroup({ maxReconsumeTimes: 0 });
    await send(topic, ["no retries"]);
    const [m] = await receive(group, topic);
    await nack(group, topic, [m.receipt]);
    expect(await receive(group, topic)).toEqual([]);
    expect((await deadLetters(group)).map((d) => d.reconsumeTimes)).toEqual([0]);
  });

  it("keeps other groups' view of the message untouched", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await putGroup({ maxReconsumeTimes: 0 });
    const other = unique("g");
    await send(topic, ["shared"]);
    const [m] = await receive(group, topic);
    await nack(group, topic, [m.receipt]);
    expect((await receive(other, topic)).map((x) => [x.body, x.reconsumeTimes])).toEqual([
      ["shared", 0],
    ]);
    expect(await deadLetters(other)).toEqual([]);
  });

  it("lists dead letters of every topic the group consumes", async () => {
    const [t1, t2] = [await createTopic({ queues: 2 }), await createTopic({ queues: 1 })];
    const group = await putGroup({ maxReconsumeTimes: 0 });
    await send(t1, ["a", "b"]);
    await send(t2, ["c"]);
    for (const t of [t1, t2]) await nack(group, t, receipts(await drain(group, t)));
    const dlq = await deadLetters(group);
    expect(dlq.map((m) => m.body).sort()).toEqual(["a", "b", "c"]);
  });
});

describe("default limits", () => {
  it("dead-letters after 17 deliveries with the default maxReconsumeTimes of 16", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["stubborn"]);
    const seen: number[] = [];
    for (let i = 0; i < 20; i++) {
      const got = await receive(group, topic);
      if (got.length === 0) break;
      seen.push(got[0].reconsumeTimes);
      await nack(group, topic, receipts(got), 0);
    }
    expect(seen).toEqual(Array.from({ length: 17 }, (_, i) => i));
    expect((await deadLetters(group)).map((m) => m.reconsumeTimes)).toEqual([16]);
  });
});

describe("message status by group", () => {
  it("follows a message from pending through inflight and retrying to dlq, and to consumed", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await putGroup({ maxReconsumeTimes: 1 });
    const [a, b] = await send(topic, ["a", "b"]);
    const status = async (msgId: string) =>
      (await api("GET", `/v1/topics/${topic}/messages/${msgId}`)).body.groups?.[group];
    await receive(group, topic, { max: 1 });
    expect(await status(a.msgId)).toBe("inflight");
    expect(await status(b.msgId)).toBe("pending");
    await lapse(topic, 0, group);
    expect(await status(a.msgId)).toBe("retrying");
    const [again, mb] = await receive(group, topic);
    expect([again.body, mb.body]).toEqual(["a", "b"]);
    await nack(group, topic, [again.receipt]);
    expect(await status(a.msgId)).toBe("dlq");
    await ack(group, topic, [mb.receipt]);
    expect(await status(b.msgId)).toBe("consumed");
  });
});

describe("dead-letter resend", () => {
  async function deadLettered(n: number) {
    const topic = await createTopic({ queues: 2 });
    const group = await putGroup({ maxReconsumeTimes: 0 });
    const sent = await send(
      topic,
      Array.from({ length: n }, (_, i) => `d${i}`),
    );
    await nack(group, topic, receipts(await drain(group, topic)));
    expect(await deadLetters(group)).toHaveLength(n);
    return { topic, group, sent };
  }

  it("delivers every dead letter to the group again with reconsumeTimes back to 0", async () => {
    const { topic, group, sent } = await deadLettered(3);
    const r = await api("POST", `/v1/groups/${group}/dlq/resend`, {});
    expect(r.status).toBe(200);
    expect(r.body.resent.sort()).toEqual(sent.map((s) => s.msgId).sort());
    expect(await deadLetters(group)).toEqual([]);
    const again = await drain(group, topic);
    expect(again.map((m) => m.msgId).sort()).toEqual(sent.map((s) => s.msgId).sort());
    expect(again.every((m) => m.reconsumeTimes === 0)).toBe(true);
    expect((await ack(group, topic, receipts(again))).every((x) => x.ok)).toBe(true);
    expect(await statTotal(group, topic, "lag")).toBe(0);
  });

  it("resends only the msgIds asked for", async () => {
    const { topic, group, sent } = await deadLettered(3);
    const r = await api("POST", `/v1/groups/${group}/dlq/resend`, { msgIds: [sent[1].msgId] });
    expect(r.body.resent).toEqual([sent[1].msgId]);
    expect((await deadLetters(group)).map((m) => m.msgId).sort()).toEqual(
      [sent[0].msgId, sent[2].msgId].sort(),
    );
    expect((await drain(group, topic)).map((m) => m.msgId)).toEqual([sent[1].msgId]);
  });

  it("resends everything with an empty msgIds list or no body", async () => {
    const { group } = await deadLettered(2);
    const r = await api("POST", `/v1/groups/${group}/dlq/resend`, { msgIds: [] });
    expect(r.body.resent).toHaveLength(2);
    const { group: g2 } = await deadLettered(1);
    const r2 = await api("POST", `/v1/groups/${g2}/dlq/resend`);
    expect(r2.status).toBe(200);
    expect(r2.body.resent).toHaveLength(1);
  });

  it("shows other groups nothing new", async () => {
    const { topic, group } = await deadLettered(2);
    const other = unique("g");
    const theirs = await drain(other, topic);
    await ack(other, topic, receipts(theirs));
    await api("POST", `/v1/groups/${group}/dlq/resend`, {});
    expect(await receive(other, topic)).toEqual([]);
    const res = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0`);
    const res1 = await api("GET", `/v1/topics/${topic}/queues/1/messages?offset=0`);
    expect(res.body.messages.length + res1.body.messages.length).toBe(2);
  });

  it("dead-letters a resent message again, once, when it keeps failing", async () => {
    const { topic, group } = await deadLettered(1);
    await api("POST", `/v1/groups/${group}/dlq/resend`, {});
    const [m] = await receive(group, topic);
    await nack(group, topic, [m.receipt]);
    expect(await deadLetters(group)).toHaveLength(1);
    expect(await statTotal(group, topic, "dlq")).toBe(1);
  });

  it("rejects a malformed msgIds list and changes nothing", async () => {
    const { group } = await deadLettered(1);
    for (const body of [{ msgIds: "x" }, { msgIds: [1] }, [], "nope"]) {
      const r = await api("POST", `/v1/groups/${group}/dlq/resend`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
    }
    expect(await deadLetters(group)).toHaveLength(1);
  });
});

describe("group stats", () => {
  it("counts offset, lag, in-flight, retrying and dead letters per queue", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await putGroup({ maxReconsumeTimes: 0, retryDelaysMs: [60_000] });
    await send(topic, ["a", "b", "c", "d", "e"]);
    const [a, b, c, d] = await receive(group, topic, { max: 4 });
    await ack(group, topic, [a.receipt]);
    await nack(group, topic, [c.receipt]); // maxReconsumeTimes 0: dead letter
    const r = await api("GET", `/v1/groups/${group}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ group, maxReconsumeTimes: 0, retryDelaysMs: [60_000] });
    // b and d in flight; e never received; the lowest offset not acked is b's.
    expect(r.body.topics[topic]).toEqual([
      { queue: 0, offset: 1, maxOffset: 5, lag: 4, inflight: 2, retrying: 0, dlq: 1 },
    ]);
    await ack(group, topic, [b.receipt]);
    const [s] = await groupStats(group, topic);
    expect(s).toMatchObject({ offset: 3, lag: 2, inflight: 1, dlq: 1 });
    expect(d.reconsumeTimes).toBe(0);
  });

  it("counts retrying messages", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["a", "b"]);
    const got = await receive(group, topic);
    await nack(group, topic, receipts(got), 60_000);
    const [s] = await groupStats(group, topic);
    expect(s).toMatchObject({ offset: 0, lag: 2, inflight: 0, retrying: 2, dlq: 0 });
  });

  it("answers GROUP_NOT_FOUND for a group never seen", async () => {
    const r = await api("GET", `/v1/groups/${unique("nobody")}`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("GROUP_NOT_FOUND");
  });
});
