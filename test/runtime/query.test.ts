/**
 * Message query: by msgId (with every group's status), by key, and by store
 * time range [from, to), fanned out over a topic's queues.
 */
import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";
import { spreadStoreTimes } from "./storage-sql.ts";

type Msg = Record<string, unknown>;

async function send(topic: string, messages: Msg[], queue?: number) {
  const q = queue === undefined ? "" : `?queue=${queue}`;
  const r = await api("POST", `/v1/topics/${topic}/messages${q}`, { messages });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.results as { msgId: string; queue: number; offset: number }[];
}

async function setStoreTimes(topic: string, queue: number, base: number, step: number) {
  await spreadStoreTimes(topic, queue, base, step);
}

const byId = (topic: string, msgId: string) =>
  api("GET", `/v1/topics/${topic}/messages/${encodeURIComponent(msgId)}`);

describe("query by msgId", () => {
  it("answers the message with each group's status: consumed, pending, inflight, retrying, dlq", async () => {
    const topic = await createTopic({ queues: 1 });
    const puller = unique("p");
    const popper = unique("r");
    const strict = unique("d");
    const ids = (
      await send(
        topic,
        [0, 1, 2, 3].map((i) => ({ body: `m${i}`, tag: "T", keys: [`k${i}`] })),
      )
    ).map((r) => r.msgId);
    // Pull group: m0 and m1 consumed (committed offset 2).
    await api("PUT", `/v1/groups/${puller}/topics/${topic}/queues/0/offset`, { offset: 2 });
    // Receive group: m0 acked, m1 nacked for later, m2 in flight, m3 not yet handed out.
    const got = await api("POST", `/v1/groups/${popper}/topics/${topic}/receive`, { max: 3 });
    const receipts = got.body.messages.map((m: { receipt: string }) => m.receipt);
    expect(receipts).toHaveLength(3);
    expect(
      (await api("POST", `/v1/groups/${popper}/topics/${topic}/ack`, { receipts: [receipts[0]] }))
        .body.results[0].ok,
    ).toBe(true);
    const nack = await api("POST", `/v1/groups/${popper}/topics/${topic}/nack`, {
      receipts: [receipts[1]],
      delayMs: 60_000,
    });
    expect(nack.body.results[0].ok).toBe(true);
    // A group allowing no redelivery: m0 nacked once goes to its dead-letter queue.
    await api("PUT", `/v1/groups/${strict}`, { maxReconsumeTimes: 0 });
    const one = await api("POST", `/v1/groups/${strict}/topics/${topic}/receive`, { max: 1 });
    await api("POST", `/v1/groups/${strict}/topics/${topic}/nack`, {
      receipts: [one.body.messages[0].receipt],
    });

    const m0 = await byId(topic, ids[0]!);
    expect(m0.status).toBe(200);
    expect(m0.body).toMatchObject({
      msgId: ids[0],
      topic,
      queue: 0,
      offset: 0,
      body: "m0",
      tag: "T",
      keys: ["k0"],
    });
    expect(m0.body.groups).toEqual({ [puller]: "consumed", [popper]: "consumed", [strict]: "dlq" });
    expect((await byId(topic, ids[1]!)).body.groups).toEqual({
      [puller]: "consumed",
      [popper]: "retrying",
      [strict]: "pending",
    });
    expect((await byId(topic, ids[2]!)).body.groups).toEqual({
      [puller]: "pending",
      [popper]: "inflight",
      [strict]: "pending",
    });
    expect((await byId(topic, ids[3]!)).body.groups).toEqual({
      [puller]: "pending",
      [popper]: "pending",
      [strict]: "pending",
    });
  });

  it("finds a message on whichever queue holds it", async () => {
    const topic = await createTopic({ queues: 4 });
    const [r] = await send(topic, [{ body: "x", msgId: unique("client-id") }], 3);
    const found = await byId(topic, r!.msgId);
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({
      msgId: r!.msgId,
      queue: 3,
      offset: 0,
      body: "x",
      groups: {},
    });
  });

  it("answers 404 for an unknown msgId or topic", async () => {
    const topic = await createTopic({ queues: 2 });
    const missing = await byId(topic, "no-such-id");
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("MESSAGE_NOT_FOUND");
    const noTopic = await byId(unique("none"), "x");
    expect(noTopic.status).toBe(404);
    expect(noTopic.body.error.code).toBe("TOPIC_NOT_FOUND");
  });
});

describe("query by key", () => {
  it("answers every message with the key across queues, in store order", async () => {
    const topic = await createTopic({ queues: 3 });
    const key = unique("order");
    await send(topic, [{ body: "a", keys: [key], shardingKey: "u1" }]);
    await send(topic, [{ body: "other", keys: ["elsewhere"] }]);
    await send(topic, [{ body: "b", keys: ["x", key], shardingKey: "u2" }]);
    await send(topic, [{ body: "c", keys: [key], shardingKey: "u3" }]);
    const r = await api("GET", `/v1/topics/${topic}/messages?key=${key}`);
    expect(r.status).toBe(200);
    expect(r.body.messages.map((m: { body: string }) => m.body).sort()).toEqual(["a", "b", "c"]);
    const times = r.body.messages.map((m: { storedAt: number }) => m.storedAt);
    expect([...times].sort((x, y) => x - y)).toEqual(times);
    expect(r.body.messages[0]).toMatchObject({ topic, keys: expect.arrayContaining([key]) });
    // A second key of a message finds it too.
    const x = await api("GET", `/v1/topics/${topic}/messages?key=x`);
    expect(x.body.messages.map((m: { body: string }) => m.body)).toEqual(["b"]);
    const limited = await api("GET", `/v1/topics/${topic}/messages?key=${key}&limit=2`);
    expect(limited.body.messages).toHaveLength(2);
    expect((await api("GET", `/v1/topics/${topic}/messages?key=nothing-here`)).body).toEqual({
      messages: [],
    });
  });

  it("answers 400 for an empty or too long key", async () => {
    const topic = await createTopic({ queues: 1 });
    for (const key of ["", "k".repeat(257)]) {
      const r = await api("GET", `/v1/topics/${topic}/messages?key=${key}`);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
    }
  });
});

describe("query by store time", () => {
  it("answers messages stored in [from, to) across queues, oldest first, up to the limit", async () => {
    const topic = await createTopic({ queues: 2 });
    await send(
      topic,
      ["a0", "a1", "a2", "a3"].map((body) => ({ body })),
      0,
    );
    await send(
      topic,
      ["b0", "b1", "b2"].map((body) => ({ body })),
      1,
    );
    const base = Date.now() - 100_000;
    await setStoreTimes(topic, 0, base, 10); // a0..a3 at +0, +10, +20, +30
    await setStoreTimes(topic, 1, base + 5, 10); // b0..b2 at +5, +15, +25
    const q = (from: number, to: number, extra = "") =>
      api("GET", `/v1/topics/${topic}/messages?from=${base + from}&to=${base + to}${extra}`);
    const r = await q(10, 25);
    expect(r.status).toBe(200);
    expect(r.body.messages.map((m: { body: string }) => m.body)).toEqual(["a1", "b1", "a2"]);
    expect(r.body.messages.map((m: { storedAt: number }) => m.storedAt - base)).toEqual([
      10, 15, 20,
    ]);
    // `to` is exclusive, `from` inclusive.
    expect((await q(10, 26)).body.messages.map((m: { body: string }) => m.body)).toEqual([
      "a1",
      "b1",
      "a2",
      "b2",
    ]);
    expect((await q(11, 15)).body.messages).toEqual([]);
    expect((await q(20, 20)).body.messages).toEqual([]);
    expect(
      (await q(0, 100, "&limit=3")).body.messages.map((m: { body: string }) => m.body),
    ).toEqual(["a0", "b0", "a1"]);
  });

  it("answers 400 for missing, malformed or reversed bounds and bad limits", async () => {
    const topic = await createTopic({ queues: 1 });
    for (const qs of [
      "",
      "from=1",
      "to=1",
      "from=abc&to=5",
      "from=-1&to=5",
      "from=1.5&to=5",
      "from=10&to=5",
      "from=1&to=5&limit=0",
      "from=1&to=5&limit=1001",
    ]) {
      const r = await api("GET", `/v1/topics/${topic}/messages?${qs}`);
      expect(r.status, qs).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
    }
    const missing = await api("GET", `/v1/topics/${unique("none")}/messages?from=0&to=5`);
    expect(missing.body.error.code).toBe("TOPIC_NOT_FOUND");
  });
});
