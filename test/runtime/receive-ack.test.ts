/**
 * Receive (pop) and ack: invariant 4's first half. Each message is handed to
 * a group once at a time, hidden for its invisible time, redelivered with
 * reconsumeTimes + 1 when not acked, and gone for good once acked.
 */
import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";
import {
  ack,
  ackRaw,
  drain,
  fireAlarm,
  groupStats,
  inflightRows,
  invisibility,
  lapse,
  makeDue,
  nack,
  nackRaw,
  receipts,
  receive,
  receiveRaw,
  send,
  sleep,
  statTotal,
} from "./consume-helpers.ts";

const bodies = (ms: any[]) => ms.map((m) => m.body).sort();

describe("receive", () => {
  it("hands out each message once per group across all queues", async () => {
    const topic = await createTopic({ queues: 4 });
    const group = unique("g");
    const sent = Array.from({ length: 40 }, (_, i) => `m${i}`);
    const results = await send(topic, sent);
    expect(new Set(results.map((r) => r.queue)).size).toBeGreaterThan(1);
    const got = await drain(group, topic, { max: 7 });
    expect(bodies(got)).toEqual([...sent].sort());
    expect(new Set(got.map((m) => m.msgId)).size).toBe(40);
    for (const m of got) {
      expect(m).toMatchObject({ topic, reconsumeTimes: 0 });
      expect(typeof m.receipt).toBe("string");
    }
    expect(await receive(group, topic)).toEqual([]);
  });

  it("answers at most max messages", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    await send(topic, ["a", "b", "c", "d", "e"]);
    expect(await receive(group, topic, { max: 3 })).toHaveLength(3);
    expect(await receive(group, topic, { max: 3 })).toHaveLength(2);
  });

  it("hands a new group every message already stored", async () => {
    const topic = await createTopic({ queues: 2 });
    await send(topic, ["a", "b", "c"]);
    const got = await drain(unique("g"), topic);
    expect(bodies(got)).toEqual(["a", "b", "c"]);
  });

  it("keeps a received message invisible until its invisible time lapses, then redelivers it with reconsumeTimes + 1", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    const [sent] = await send(topic, ["once"]);
    const [first] = await receive(group, topic);
    expect(first).toMatchObject({ msgId: sent.msgId, reconsumeTimes: 0 });
    expect(await receive(group, topic)).toEqual([]);

    await lapse(topic, 0, group);
    const [again] = await receive(group, topic);
    expect(again).toMatchObject({ msgId: sent.msgId, body: "once", reconsumeTimes: 1 });
    expect(again.receipt).not.toBe(first.receipt);
    expect(await receive(group, topic)).toEqual([]);
  });

  it("redelivers a lapsed receipt even before the alarm has run", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["x"]);
    await receive(group, topic);
    await makeDue(topic, 0, group);
    const [again] = await receive(group, topic);
    expect(again).toMatchObject({ body: "x", reconsumeTimes: 1 });
  });

  it("redelivers after a real invisible time of one second", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["slow"]);
    await receive(group, topic, { invisibleMs: 1000 });
    await sleep(1100);
    const [again] = await receive(group, topic, { invisibleMs: 1000 });
    expect(again).toMatchObject({ body: "slow", reconsumeTimes: 1 });
  });

  it("loses nothing when a consumer receives and never acks", async () => {
    const topic = await createTopic({ queues: 3 });
    const group = unique("g");
    const sent = Array.from({ length: 12 }, (_, i) => `c${i}`);
    await send(topic, sent);
    // The crashed consumer takes everything and vanishes.
    expect(await drain(group, topic)).toHaveLength(12);
    for (let q = 0; q < 3; q++) await lapse(topic, q, group);
    const again = await drain(group, topic);
    expect(bodies(again)).toEqual([...sent].sort());
    expect(again.every((m) => m.reconsumeTimes === 1)).toBe(true);
    const results = await ack(group, topic, receipts(again));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(await statTotal(group, topic, "lag")).toBe(0);
  });

  it("gives two groups every message each", async () => {
    const topic = await createTopic({ queues: 2 });
    const [g1, g2] = [unique("g"), unique("g")];
    const sent = ["a", "b", "c", "d", "e", "f"];
    await send(topic, sent);
    const got1 = await drain(g1, topic, { max: 4 });
    await ack(g1, topic, receipts(got1));
    const got2 = await drain(g2, topic, { max: 4 });
    expect(bodies(got1)).toEqual(sent);
    expect(bodies(got2)).toEqual(sent);
  });

  it("shares a group's messages between its consumers without duplicates", async () => {
    const topic = await createTopic({ queues: 4 });
    const group = unique("g");
    const sent = Array.from({ length: 60 }, (_, i) => `s${i}`);
    await send(topic, sent);
    const seen: string[][] = [[], []];
    // Two consumers receive concurrently, a few at a time, until both see nothing.
    await Promise.all(
      [0, 1].map(async (c) => {
        for (let i = 0; i < 40; i++) {
          const got = await receive(group, topic, { max: 4 });
          if (got.length === 0) return;
          seen[c]!.push(...got.map((m) => m.body));
          await ack(group, topic, receipts(got));
        }
      }),
    );
    const all = [...seen[0]!, ...seen[1]!];
    expect(all).toHaveLength(60);
    expect(new Set(all).size).toBe(60);
    expect(seen[0]!.length).toBeGreaterThan(0);
    expect(seen[1]!.length).toBeGreaterThan(0);
  });

  it("applies a filter and never hands out what it excludes", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, [
      { body: "a", tag: "A" },
      { body: "b", tag: "B" },
      { body: "a2", tag: "A" },
    ]);
    const got = await receive(group, topic, { filter: "A" });
    expect(bodies(got)).toEqual(["a", "a2"]);
  });
});

describe("long-poll receive", () => {
  it("wakes as soon as a message is sent to any queue", async () => {
    const topic = await createTopic({ queues: 4 });
    const group = unique("g");
    const waiting = receive(group, topic, { waitMs: 5000 });
    await sleep(100);
    await send(topic, ["late"], 3);
    const got = await waiting;
    expect(got.map((m) => m.body)).toEqual(["late"]);
  });

  it("wakes when a receipt of the group is nacked for an immediate retry", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    await send(topic, ["r"], 1);
    const [m] = await receive(group, topic);
    const waiting = receive(group, topic, { waitMs: 5000 });
    await sleep(100);
    await nack(group, topic, [m.receipt], 0);
    const got = await waiting;
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ body: "r", reconsumeTimes: 1 });
  });

  it("claims nothing when it times out", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    expect(await receive(group, topic, { waitMs: 300 })).toEqual([]);
    const stats = await groupStats(group, topic);
    expect(stats.map((s) => s.inflight)).toEqual([0, 0]);
    await send(topic, ["after"]);
    expect((await receive(group, topic)).map((m) => m.body)).toEqual(["after"]);
  });
});

describe("ack", () => {
  it("removes a message for good", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["done"]);
    const [m] = await receive(group, topic);
    expect(await ack(group, topic, [m.receipt])).toEqual([{ receipt: m.receipt, ok: true }]);
    await lapse(topic, 0, group);
    expect(await receive(group, topic)).toEqual([]);
    expect(await inflightRows(topic, 0, group)).toEqual([]);
    const [s] = await groupStats(group, topic);
    expect(s).toMatchObject({ offset: 1, maxOffset: 1, lag: 0, inflight: 0, retrying: 0, dlq: 0 });
  });

  it("answers results in request order, each on its own", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    await send(topic, ["a", "b", "c"]);
    const got = await drain(group, topic);
    await ack(group, topic, [got[1].receipt]);
    const results = await ack(group, topic, [got[2].receipt, got[1].receipt, got[0].receipt]);
    expect(results.map((r) => r.receipt)).toEqual([got[2].receipt, got[1].receipt, got[0].receipt]);
    expect(results[0]).toEqual({ receipt: got[2].receipt, ok: true });
    expect(results[1].error.code).toBe("RECEIPT_EXPIRED");
    expect(results[2]).toEqual({ receipt: got[0].receipt, ok: true });
  });

  it("answers RECEIPT_EXPIRED for a lapsed receipt and changes nothing", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["late-ack"]);
    const [m] = await receive(group, topic);
    await makeDue(topic, 0, group);
    const [r] = await ack(group, topic, [m.receipt]);
    expect(r).toMatchObject({ receipt: m.receipt, error: { code: "RECEIPT_EXPIRED" } });
    expect(typeof r.error.message).toBe("string");
    // Not acked: it comes back.
    const [again] = await receive(group, topic);
    expect(again).toMatchObject({ body: "late-ack", reconsumeTimes: 1 });
  });

  it("does not let a lapsed receipt ack the message's next delivery", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["m"]);
    const [first] = await receive(group, topic);
    await lapse(topic, 0, group);
    const [second] = await receive(group, topic);
    const [r] = await ack(group, topic, [first.receipt]);
    expect(r.error.code).toBe("RECEIPT_EXPIRED");
    const [row] = await inflightRows(topic, 0, group);
    expect(row).toMatchObject({ state: 0, deliveries: 2 });
    expect(await ack(group, topic, [second.receipt])).toEqual([
      { receipt: second.receipt, ok: true },
    ]);
  });

  it("answers RECEIPT_EXPIRED for a receipt already acked", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["twice"]);
    const [m] = await receive(group, topic);
    await ack(group, topic, [m.receipt]);
    const [r] = await ack(group, topic, [m.receipt]);
    expect(r.error.code).toBe("RECEIPT_EXPIRED");
  });

  it("answers RECEIPT_EXPIRED for a well-formed receipt no delivery ever had", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["m"]);
    const [m] = await receive(group, topic);
    const forged = m.receipt.replace(/\.[^.]+$/, ".AAAAAAAAAAAA");
    const [r] = await ack(group, topic, [forged]);
    expect(r.error.code).toBe("RECEIPT_EXPIRED");
    expect(await ack(group, topic, [m.receipt])).toEqual([{ receipt: m.receipt, ok: true }]);
  });
});

describe("invisibility", () => {
  it("extends the invisible time with a new receipt; the old one stops working", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["long job"]);
    const [m] = await receive(group, topic, { invisibleMs: 1000 });
    const before = Date.now();
    const r = await invisibility(group, topic, m.receipt, 600_000);
    expect(r.status).toBe(200);
    expect(typeof r.body.receipt).toBe("string");
    expect(r.body.receipt).not.toBe(m.receipt);
    const [row] = await inflightRows(topic, 0, group);
    expect(row!.visible_at).toBeGreaterThanOrEqual(before + 600_000);
    // Past the original second it is still hidden.
    await sleep(1100);
    expect(await receive(group, topic)).toEqual([]);
    const [old] = await ack(group, topic, [m.receipt]);
    expect(old.error.code).toBe("RECEIPT_EXPIRED");
    expect(await ack(group, topic, [r.body.receipt])).toEqual([
      { receipt: r.body.receipt, ok: true },
    ]);
  });

  it("shortens the invisible time so the message comes back sooner", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["give back"]);
    const [m] = await receive(group, topic, { invisibleMs: 600_000 });
    const r = await invisibility(group, topic, m.receipt, 1000);
    expect(r.status).toBe(200);
    await sleep(1100);
    const [again] = await receive(group, topic);
    expect(again).toMatchObject({ body: "give back", reconsumeTimes: 1 });
    const [old] = await ack(group, topic, [r.body.receipt]);
    expect(old.error.code).toBe("RECEIPT_EXPIRED");
  });

  it("answers 410 RECEIPT_EXPIRED for a lapsed receipt", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["m"]);
    const [m] = await receive(group, topic);
    await makeDue(topic, 0, group);
    const r = await invisibility(group, topic, m.receipt, 5000);
    expect(r.status).toBe(410);
    expect(r.body.error.code).toBe("RECEIPT_EXPIRED");
  });
});

describe("bad input", () => {
  /** A group with one message in flight, to show bad calls change nothing. */
  async function inFlight() {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    await send(topic, ["keep"], 1);
    const [m] = await receive(group, topic);
    return { topic, group, m };
  }

  /** The message is still in flight under its receipt, delivered once. */
  async function unchanged(topic: string, group: string, m: any) {
    const rows = await inflightRows(topic, 1, group);
    expect(rows).toMatchObject([{ state: 0, deliveries: 1 }]);
    expect(await ack(group, topic, [m.receipt])).toEqual([{ receipt: m.receipt, ok: true }]);
  }

  it("rejects malformed receipts, the whole batch, with BAD_REQUEST", async () => {
    const { topic, group, m } = await inFlight();
    for (const bad of ["nope", "", 42, null, `${m.receipt}!`, m.receipt.replace(/^r1/, "r2")]) {
      const r = await ackRaw(group, topic, [m.receipt, bad]);
      expect(r.status, String(bad)).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
    }
    for (const bad of [[], "r1.x", undefined, {}, Array(1001).fill(m.receipt)]) {
      const r = await ackRaw(group, topic, bad);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
    }
    const r = await nackRaw(group, topic, [m.receipt, "junk"], 0);
    expect(r.status).toBe(400);
    await unchanged(topic, group, m);
  });

  it("rejects a receipt of another group or another topic", async () => {
    const { topic, group, m } = await inFlight();
    const other = unique("g");
    const otherTopic = await createTopic({ queues: 2 });
    const r1 = await ackRaw(other, topic, [m.receipt]);
    expect(r1.status).toBe(400);
    expect(r1.body.error.code).toBe("BAD_REQUEST");
    const r2 = await ackRaw(group, otherTopic, [m.receipt]);
    expect(r2.status).toBe(400);
    const r3 = await nackRaw(other, topic, [m.receipt]);
    expect(r3.status).toBe(400);
    const r4 = await invisibility(other, topic, m.receipt, 5000);
    expect(r4.status).toBe(400);
    await unchanged(topic, group, m);
  });

  it("rejects a receipt naming a queue the topic does not have", async () => {
    const { topic, group, m } = await inFlight();
    const bad = m.receipt.replace(`.${group}.1.`, `.${group}.7.`);
    expect(bad).not.toBe(m.receipt);
    const r = await ackRaw(group, topic, [bad]);
    expect(r.status).toBe(400);
    await unchanged(topic, group, m);
  });

  it("rejects max, waitMs and invisibleMs out of range, claiming nothing", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["stay"]);
    const bad: Record<string, unknown>[] = [
      { max: 0 },
      { max: 1001 },
      { max: 1.5 },
      { max: "3" },
      { waitMs: -1 },
      { waitMs: 30_001 },
      { invisibleMs: 999 },
      { invisibleMs: 43_200_001 },
      { invisibleMs: "1000" },
      { filter: 7 },
      { filter: "sql:a = " },
    ];
    for (const body of bad) {
      const r = await receiveRaw(group, topic, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
    }
    const r = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, "{not json");
    expect(r.status).toBe(400);
    expect((await receive(group, topic)).map((m) => m.body)).toEqual(["stay"]);
  });

  it("rejects invisibility without a valid invisibleMs", async () => {
    const { topic, group, m } = await inFlight();
    for (const ms of [undefined, 999, 43_200_001, "5000", 1.5]) {
      const r = await invisibility(group, topic, m.receipt, ms);
      expect(r.status, String(ms)).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
    }
    await unchanged(topic, group, m);
  });

  it("rejects a nack delayMs out of range", async () => {
    const { topic, group, m } = await inFlight();
    for (const d of [-1, "10", 1.5, 40 * 24 * 3600_000 + 1]) {
      const r = await nackRaw(group, topic, [m.receipt], d);
      expect(r.status, String(d)).toBe(400);
    }
    await unchanged(topic, group, m);
  });

  it("answers RECEIPT_EXPIRED to a nack of an acked message, changing nothing", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["acked"]);
    const [m] = await receive(group, topic);
    await ack(group, topic, [m.receipt]);
    const [r] = await nack(group, topic, [m.receipt], 0);
    expect(r.error.code).toBe("RECEIPT_EXPIRED");
    expect(await receive(group, topic)).toEqual([]);
    expect(await inflightRows(topic, 0, group)).toEqual([]);
  });

  it("answers TOPIC_NOT_FOUND for receive and ack on an unknown topic", async () => {
    const group = unique("g");
    const r = await receiveRaw(group, unique("none"));
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("TOPIC_NOT_FOUND");
    const a = await ackRaw(group, unique("none"), ["r1.x.y.0.0.abc"]);
    expect(a.status).toBe(404);
  });

  it("rejects bad group and topic names", async () => {
    const r = await receiveRaw("bad name!", "t");
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("INVALID_NAME");
  });
});

describe("alarm", () => {
  it("turns lapsed receipts into retries that are visible at once", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ["a", "b"]);
    await receive(group, topic);
    await makeDue(topic, 0, group);
    expect(await fireAlarm(topic, 0)).toBe(true);
    const rows = await inflightRows(topic, 0, group);
    expect(rows.map((r) => r.state)).toEqual([1, 1]);
    expect(await statTotal(group, topic, "retrying")).toBe(2);
    expect(bodies(await receive(group, topic))).toEqual(["a", "b"]);
  });
});
