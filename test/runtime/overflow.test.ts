/**
 * Backlog bounds and every overflow policy (the seed's point 5: CORBA's
 * RejectNewEvents, FifoOrder, LifoOrder, PriorityOrder, DeadlineOrder).
 */
import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";
import { keyIndex } from "./storage-sql.ts";

type Msg = Record<string, unknown>;

async function send(topic: string, messages: Msg[]) {
  return api("POST", `/v1/topics/${topic}/messages?queue=0`, { messages });
}

async function sendOk(topic: string, messages: Msg[]) {
  const r = await send(topic, messages);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.results as { msgId: string; offset: number | null; status: string }[];
}

/** Bodies of everything stored in queue 0, read from offset 0 with one pull. */
async function stored(topic: string): Promise<{ bodies: string[]; offsets: number[]; pull: any }> {
  const r = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0&max=1000`);
  expect(r.status).toBe(200);
  return {
    bodies: r.body.messages.map((m: { body: string }) => m.body),
    offsets: r.body.messages.map((m: { offset: number }) => m.offset),
    pull: r.body,
  };
}

async function queueStats(topic: string) {
  const r = await api("GET", `/v1/topics/${topic}`);
  expect(r.status).toBe(200);
  return r.body.queueStats[0] as {
    minOffset: number;
    maxOffset: number;
    messages: number;
    bytes: number;
    dropped: number;
  };
}

const bodies = (...xs: string[]) => xs.map((body) => ({ body }));
const future = () => Date.now() + 3_600_000;

describe("overflow policy reject", () => {
  it("answers 507 QUEUE_FULL once the message bound is reached and stores nothing", async () => {
    const topic = await createTopic({ queues: 1, maxBacklogMessages: 3, overflowPolicy: "reject" });
    await sendOk(topic, bodies("a", "b"));
    // A batch that would cross the bound is refused whole: all or nothing.
    const over = await send(topic, bodies("c", "d"));
    expect(over.status).toBe(507);
    expect(over.body.error.code).toBe("QUEUE_FULL");
    expect((await queueStats(topic)).messages).toBe(2);
    await sendOk(topic, bodies("c"));
    const full = await send(topic, bodies("d"));
    expect(full.status).toBe(507);
    expect(full.body.error.code).toBe("QUEUE_FULL");
    expect((await stored(topic)).bodies).toEqual(["a", "b", "c"]);
    expect(await queueStats(topic)).toMatchObject({
      minOffset: 0,
      maxOffset: 3,
      messages: 3,
      dropped: 0,
    });
  });

  it("answers 507 QUEUE_FULL once the byte bound is reached", async () => {
    const topic = await createTopic({
      queues: 1,
      maxMessageBytes: 4,
      maxBacklogBytes: 10,
      overflowPolicy: "reject",
    });
    await sendOk(topic, bodies("aaaa", "bbbb"));
    const full = await send(topic, bodies("ccc"));
    expect(full.status).toBe(507);
    expect(full.body.error.code).toBe("QUEUE_FULL");
    await sendOk(topic, bodies("cc"));
    expect(await queueStats(topic)).toMatchObject({ messages: 3, bytes: 10, maxOffset: 3 });
  });

  it("accepts sends again after a purge makes room", async () => {
    const topic = await createTopic({ queues: 1, maxBacklogMessages: 1, overflowPolicy: "reject" });
    await sendOk(topic, bodies("a"));
    expect((await send(topic, bodies("b"))).status).toBe(507);
    expect((await api("POST", `/v1/topics/${topic}/purge`)).status).toBe(200);
    const [r] = await sendOk(topic, bodies("b"));
    expect(r).toMatchObject({ offset: 1, status: "stored" });
  });
});

describe("overflow policy drop-oldest", () => {
  it("evicts the oldest messages by count, reporting them as skipped", async () => {
    const topic = await createTopic({
      queues: 1,
      maxBacklogMessages: 3,
      overflowPolicy: "drop-oldest",
    });
    const results = await sendOk(topic, bodies("a", "b", "c", "d", "e"));
    expect(results.map((r) => [r.offset, r.status])).toEqual([
      [0, "stored"],
      [1, "stored"],
      [2, "stored"],
      [3, "stored"],
      [4, "stored"],
    ]);
    const { bodies: got, offsets, pull } = await stored(topic);
    expect(got).toEqual(["c", "d", "e"]);
    expect(offsets).toEqual([2, 3, 4]);
    expect(pull).toMatchObject({ minOffset: 2, maxOffset: 5, skipped: 2, nextOffset: 5 });
    expect(await queueStats(topic)).toMatchObject({ messages: 3, dropped: 2 });
  });

  it("evicts as many old messages as the byte bound needs", async () => {
    const topic = await createTopic({
      queues: 1,
      maxMessageBytes: 6,
      maxBacklogBytes: 8,
      overflowPolicy: "drop-oldest",
    });
    await sendOk(topic, bodies("aa", "bb", "cc", "dd"));
    await sendOk(topic, bodies("eeeeee"));
    expect((await stored(topic)).bodies).toEqual(["dd", "eeeeee"]);
    expect(await queueStats(topic)).toMatchObject({
      messages: 2,
      bytes: 8,
      minOffset: 3,
      dropped: 3,
    });
  });
});

describe("overflow policy drop-newest", () => {
  it("answers incoming messages with status dropped and keeps the stored ones", async () => {
    const topic = await createTopic({
      queues: 1,
      maxBacklogMessages: 2,
      overflowPolicy: "drop-newest",
    });
    const results = await sendOk(topic, bodies("a", "b", "c", "d"));
    expect(results.map((r) => [r.offset, r.status])).toEqual([
      [0, "stored"],
      [1, "stored"],
      [null, "dropped"],
      [null, "dropped"],
    ]);
    expect((await stored(topic)).bodies).toEqual(["a", "b"]);
    // A dropped message uses no offset: the next stored one follows directly.
    expect(await queueStats(topic)).toMatchObject({
      minOffset: 0,
      maxOffset: 2,
      messages: 2,
      dropped: 2,
    });
  });

  it("drops by the byte bound too", async () => {
    const topic = await createTopic({
      queues: 1,
      maxMessageBytes: 5,
      maxBacklogBytes: 6,
      overflowPolicy: "drop-newest",
    });
    const results = await sendOk(topic, bodies("aaaa", "bbb", "cc"));
    expect(results.map((r) => r.status)).toEqual(["stored", "dropped", "stored"]);
    expect((await stored(topic)).bodies).toEqual(["aaaa", "cc"]);
    expect(await queueStats(topic)).toMatchObject({ bytes: 6, dropped: 1 });
  });
});

describe("overflow policy drop-lowest-priority", () => {
  it("evicts the lowest priority (oldest first among equals) and keeps offsets stable", async () => {
    const topic = await createTopic({
      queues: 1,
      maxBacklogMessages: 3,
      overflowPolicy: "drop-lowest-priority",
    });
    await sendOk(topic, [
      { body: "p5", priority: 5 },
      { body: "p1", priority: 1 },
      { body: "p7", priority: 7 },
    ]);
    const [r] = await sendOk(topic, [{ body: "p4", priority: 4 }]);
    expect(r).toMatchObject({ offset: 3, status: "stored" });
    const { bodies: got, offsets, pull } = await stored(topic);
    expect(got).toEqual(["p5", "p7", "p4"]);
    expect(offsets).toEqual([0, 2, 3]);
    expect(pull).toMatchObject({ minOffset: 0, maxOffset: 4, nextOffset: 4, skipped: 0 });
    // Equal priority: the stored (older) one goes.
    await sendOk(topic, [{ body: "p4b", priority: 4 }]);
    expect((await stored(topic)).bodies).toEqual(["p5", "p7", "p4b"]);
    expect(await queueStats(topic)).toMatchObject({ messages: 3, dropped: 2 });
  });

  it("drops an incoming message of lower priority than everything stored", async () => {
    const topic = await createTopic({
      queues: 1,
      maxBacklogMessages: 2,
      overflowPolicy: "drop-lowest-priority",
    });
    await sendOk(topic, [
      { body: "a", priority: 6 },
      { body: "b", priority: 8 },
    ]);
    const [r] = await sendOk(topic, [{ body: "low", priority: 2 }]);
    expect(r).toMatchObject({ offset: null, status: "dropped" });
    expect((await stored(topic)).bodies).toEqual(["a", "b"]);
    expect((await queueStats(topic)).dropped).toBe(1);
  });

  it("evicts several low-priority messages to fit a large one under the byte bound", async () => {
    const topic = await createTopic({
      queues: 1,
      maxMessageBytes: 6,
      maxBacklogBytes: 8,
      overflowPolicy: "drop-lowest-priority",
    });
    await sendOk(topic, [
      { body: "aa", priority: 1 },
      { body: "bb", priority: 9 },
      { body: "cc", priority: 2 },
      { body: "dd", priority: 3 },
    ]);
    await sendOk(topic, [{ body: "eeeeee", priority: 5 }]);
    const { bodies: got, offsets } = await stored(topic);
    expect(got).toEqual(["bb", "eeeeee"]);
    expect(offsets).toEqual([1, 4]);
    expect(await queueStats(topic)).toMatchObject({ messages: 2, bytes: 8, dropped: 3 });
  });
});

describe("overflow policy drop-earliest-deadline", () => {
  it("evicts the message with the earliest expireAt, from the middle of the log", async () => {
    const topic = await createTopic({
      queues: 1,
      maxBacklogMessages: 3,
      overflowPolicy: "drop-earliest-deadline",
    });
    const t = future();
    await sendOk(topic, [
      { body: "late", expireAt: t + 300 },
      { body: "early", expireAt: t + 100 },
      { body: "none" },
    ]);
    const [r] = await sendOk(topic, [{ body: "mid", expireAt: t + 200 }]);
    expect(r).toMatchObject({ offset: 3, status: "stored" });
    const { bodies: got, offsets } = await stored(topic);
    expect(got).toEqual(["late", "none", "mid"]);
    expect(offsets).toEqual([0, 2, 3]);
    // No deadline on the incoming message: the earliest stored deadline still goes first.
    await sendOk(topic, [{ body: "none2" }]);
    expect((await stored(topic)).bodies).toEqual(["late", "none", "none2"]);
    await sendOk(topic, [{ body: "none3" }]);
    expect((await stored(topic)).bodies).toEqual(["none", "none2", "none3"]);
    // With no deadline left in the queue, the oldest goes.
    await sendOk(topic, [{ body: "none4" }]);
    expect((await stored(topic)).bodies).toEqual(["none2", "none3", "none4"]);
    expect((await queueStats(topic)).dropped).toBe(4);
  });

  it("drops an incoming message whose deadline is earlier than every stored one", async () => {
    const topic = await createTopic({
      queues: 1,
      maxBacklogMessages: 2,
      overflowPolicy: "drop-earliest-deadline",
    });
    const t = future();
    await sendOk(topic, [
      { body: "a", expireAt: t + 500 },
      { body: "b", expireAt: t + 600 },
    ]);
    const [r] = await sendOk(topic, [{ body: "soon", expireAt: t + 100 }]);
    expect(r).toMatchObject({ offset: null, status: "dropped" });
    expect((await stored(topic)).bodies).toEqual(["a", "b"]);
  });
});

describe("deleting from the middle of the log", () => {
  it("keeps offsets stable and pages correctly around the holes", async () => {
    const topic = await createTopic({
      queues: 1,
      maxBacklogMessages: 4,
      overflowPolicy: "drop-lowest-priority",
    });
    await sendOk(topic, [
      { body: "m0", priority: 5 },
      { body: "m1", priority: 0 },
      { body: "m2", priority: 5 },
      { body: "m3", priority: 1 },
    ]);
    await sendOk(topic, [
      { body: "m4", priority: 5 },
      { body: "m5", priority: 5 },
    ]);
    // m1 and m3 were evicted; pages of 1 message step over both holes.
    const seen: [number, string][] = [];
    let offset = 0;
    for (let i = 0; i < 10 && offset < 6; i++) {
      const r = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=${offset}&max=1`);
      expect(r.body.skipped).toBe(0);
      for (const m of r.body.messages) seen.push([m.offset, m.body]);
      expect(r.body.nextOffset).toBeGreaterThan(offset);
      offset = r.body.nextOffset;
    }
    expect(seen).toEqual([
      [0, "m0"],
      [2, "m2"],
      [4, "m4"],
      [5, "m5"],
    ]);
    // A pull starting inside a hole starts at the next stored message.
    const inHole = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=3&max=10`);
    expect(inHole.body.messages.map((m: { offset: number }) => m.offset)).toEqual([4, 5]);
    // Receive hands out the survivors once each.
    const group = unique("g");
    const got = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 10 });
    expect(got.body.messages.map((m: { body: string }) => m.body)).toEqual([
      "m0",
      "m2",
      "m4",
      "m5",
    ]);
    // Queries by id do not find an evicted message.
    const evicted = await api("GET", `/v1/topics/${topic}/messages?from=0&to=${Date.now() + 1000}`);
    expect(evicted.body.messages.map((m: { body: string }) => m.body)).toEqual([
      "m0",
      "m2",
      "m4",
      "m5",
    ]);
  });
});

describe("evicted messages", () => {
  it("leave no key index entries behind and are not found by key", async () => {
    const topic = await createTopic({
      queues: 1,
      maxBacklogMessages: 1,
      overflowPolicy: "drop-oldest",
    });
    await sendOk(topic, [{ body: "old", keys: ["shared", "old-only"] }]);
    await sendOk(topic, [{ body: "new", keys: ["shared"] }]);
    const shared = await api("GET", `/v1/topics/${topic}/messages?key=shared`);
    expect(shared.body.messages.map((m: { body: string }) => m.body)).toEqual(["new"]);
    expect((await api("GET", `/v1/topics/${topic}/messages?key=old-only`)).body.messages).toEqual(
      [],
    );
    const keys = await keyIndex(topic);
    expect(keys).toEqual([{ key: "shared", msg_offset: 1 }]);
  });
});

describe("backlog bound validation", () => {
  it("rejects contradictory or invalid bounds with 400 and changes nothing", async () => {
    const topic = await createTopic({
      queues: 1,
      maxBacklogMessages: 10,
      overflowPolicy: "drop-oldest",
    });
    const before = (await api("GET", `/v1/topics/${topic}`)).body;
    const cases: Record<string, unknown>[] = [
      { maxBacklogBytes: 100 }, // smaller than the default maxMessageBytes (1 MiB)
      { maxMessageBytes: 2000, maxBacklogBytes: 1000 },
      { maxBacklogMessages: 0 },
      { maxBacklogBytes: -5 },
      { maxBacklogMessages: 1.5 },
      { maxBacklogMessages: "10" },
      { overflowPolicy: "drop-random" },
      { overflowPolicy: null },
    ];
    for (const body of cases) {
      const r = await api("PUT", `/v1/topics/${topic}`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
    }
    const after = (await api("GET", `/v1/topics/${topic}`)).body;
    expect(after).toEqual(before);
  });

  it("accepts a byte bound equal to maxMessageBytes, and clears bounds with null", async () => {
    const topic = await createTopic({ queues: 1, maxMessageBytes: 100, maxBacklogBytes: 100 });
    const cleared = await api("PUT", `/v1/topics/${topic}`, {
      maxBacklogBytes: null,
      maxMessageBytes: 200,
    });
    expect(cleared.status).toBe(200);
    expect(cleared.body).toMatchObject({ maxBacklogBytes: null, maxMessageBytes: 200 });
  });
});
