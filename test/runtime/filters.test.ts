/**
 * SQL92 property filters (and tag lists) evaluated in the shard, for pull
 * and receive. The grammar itself is pinned in test/unit/filter.test.ts; this
 * pins what the broker does with it.
 */
import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";

type Msg = Record<string, unknown>;

async function send(topic: string, messages: Msg[]) {
  const r = await api("POST", `/v1/topics/${topic}/messages?queue=0`, { messages });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.results as { offset: number }[];
}

const pull = (topic: string, offset: number, filter: string, extra = "") =>
  api(
    "GET",
    `/v1/topics/${topic}/queues/0/messages?offset=${offset}&max=100&filter=${encodeURIComponent(filter)}${extra}`,
  );

const receive = (group: string, topic: string, body: Record<string, unknown>) =>
  api("POST", `/v1/groups/${group}/topics/${topic}/receive`, body);

const bodiesOf = (r: { body: { messages: { body: string }[] } }) =>
  r.body.messages.map((m) => m.body);

/** Orders from three regions with amounts, some without properties. */
const ORDERS: Msg[] = [
  { body: "eu-42", tag: "Order", properties: { region: "eu", amount: "42" } },
  { body: "us-7", tag: "Order", properties: { region: "us", amount: "7" } },
  { body: "plain", tag: "Note" },
  { body: "eu-abc", tag: "Order", properties: { region: "eu", amount: "abc" } },
  { body: "ap-100", tag: "Refund", properties: { region: "ap", amount: "100", vip: "true" } },
  { body: "eu-9", tag: "Refund", properties: { region: "eu-west", amount: "9" } },
];

describe("SQL filters in pull", () => {
  it("returns only matching messages and moves nextOffset past the others", async () => {
    const topic = await createTopic({ queues: 1 });
    await send(topic, ORDERS);
    const cases: [string, string[]][] = [
      ["sql:region = 'eu' AND amount > 40", ["eu-42"]],
      ["sql:amount > 8", ["eu-42", "ap-100", "eu-9"]],
      ["sql:amount BETWEEN 7 AND 42", ["eu-42", "us-7", "eu-9"]],
      ["sql:region IN ('us', 'ap')", ["us-7", "ap-100"]],
      ["sql:region NOT IN ('us', 'ap')", ["eu-42", "eu-abc", "eu-9"]],
      ["sql:region IS NULL", ["plain"]],
      ["sql:vip IS NOT NULL AND vip = TRUE", ["ap-100"]],
      ["sql:region STARTSWITH 'eu'", ["eu-42", "eu-abc", "eu-9"]],
      ["sql:region ENDSWITH 'west' OR region CONTAINS 'p'", ["ap-100", "eu-9"]],
      ["sql:tag = 'Refund' AND NOT (amount < 50)", ["ap-100"]],
      ["sql:TAGS <> 'Order'", ["plain", "ap-100", "eu-9"]],
      ["Order || Note", ["eu-42", "us-7", "plain", "eu-abc"]],
      ["*", ORDERS.map((m) => m.body as string)],
    ];
    for (const [filter, want] of cases) {
      const r = await pull(topic, 0, filter);
      expect(r.status, filter).toBe(200);
      expect(bodiesOf(r), filter).toEqual(want);
      expect(r.body.nextOffset, filter).toBe(6);
    }
  });

  it("answers an empty page with nextOffset at the end when nothing matches", async () => {
    const topic = await createTopic({ queues: 1 });
    await send(topic, ORDERS);
    const r = await pull(topic, 2, "sql:region = 'mars'");
    expect(r.body).toMatchObject({ messages: [], nextOffset: 6, maxOffset: 6, skipped: 0 });
  });

  it("finds a match behind a long run of non-matching messages in bounded pages", async () => {
    const topic = await createTopic({ queues: 1 });
    for (let i = 0; i < 3; i++) {
      await send(
        topic,
        Array.from({ length: 1000 }, (_, j) => ({
          body: `n${i * 1000 + j}`,
          properties: { k: "no" },
        })),
      );
    }
    await send(topic, [{ body: "needle", properties: { k: "yes" } }]);
    const found: { offset: number; body: string }[] = [];
    let offset = 0;
    for (let i = 0; i < 10 && offset < 3001; i++) {
      const r = await pull(topic, offset, "sql:k = 'yes'");
      expect(r.status).toBe(200);
      found.push(...r.body.messages);
      expect(r.body.nextOffset).toBeGreaterThan(offset);
      offset = r.body.nextOffset;
    }
    expect(found.map((m) => [m.offset, m.body])).toEqual([[3000, "needle"]]);
  });

  it("answers a long-poll with the first matching message, not a non-matching one", async () => {
    const topic = await createTopic({ queues: 1 });
    const waiting = pull(topic, 0, "sql:region = 'eu'", "&waitMs=10000");
    await new Promise((resolve) => setTimeout(resolve, 50));
    await send(topic, [{ body: "us", properties: { region: "us" } }]);
    await send(topic, [{ body: "eu", properties: { region: "eu" } }]);
    const r = await waiting;
    expect(bodiesOf(r)).toEqual(["eu"]);
    expect(r.body.nextOffset).toBe(2);
  });

  it("answers 400 with the error position for a malformed expression", async () => {
    const topic = await createTopic({ queues: 1 });
    await send(topic, ORDERS);
    const cases: [string, number][] = [
      ["sql:region = ", 13],
      ["sql:region = 'eu", 13],
      ["sql:amount > 1 AND", 18],
      ["sql:(region = 'eu'", 18],
      ["sql:region == 'eu'", 12],
      ["sql:region IN ()", 15],
    ];
    for (const [filter, position] of cases) {
      const r = await pull(topic, 0, filter);
      expect(r.status, filter).toBe(400);
      expect(r.body.error.code, filter).toBe("BAD_REQUEST");
      expect(r.body.error.position, filter).toBe(position);
      expect(typeof r.body.error.message).toBe("string");
    }
    const tags = await pull(topic, 0, "Order || ");
    expect(tags.status).toBe(400);
    expect(typeof tags.body.error.position).toBe("number");
    const long = await pull(topic, 0, `sql:${"a = 'b' AND ".repeat(400)}a = 'b'`);
    expect(long.status).toBe(400);
  });
});

describe("SQL filters in receive", () => {
  it("hands out only matching messages and passes the others for the group", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ORDERS);
    const got = await receive(group, topic, {
      max: 10,
      filter: "sql:amount >= 9 AND region <> 'ap'",
    });
    expect(got.status).toBe(200);
    expect(bodiesOf(got)).toEqual(["eu-42", "eu-9"]);
    const again = await receive(group, topic, {
      max: 10,
      filter: "sql:amount >= 9 AND region <> 'ap'",
    });
    expect(again.body.messages).toEqual([]);
    // Another group with another filter sees its own selection.
    const other = await receive(unique("g"), topic, { max: 10, filter: "Refund" });
    expect(bodiesOf(other)).toEqual(["ap-100", "eu-9"]);
  });

  it("applies the filter to redeliveries too", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, [{ body: "a", properties: { p: "1" } }]);
    const got = await receive(group, topic, { max: 10 });
    await api("POST", `/v1/groups/${group}/topics/${topic}/nack`, {
      receipts: [got.body.messages[0].receipt],
      delayMs: 0,
    });
    const filtered = await receive(group, topic, { max: 10, filter: "sql:p = '2'" });
    expect(filtered.body.messages).toEqual([]);
  });

  it("waits for a matching message when waiting", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    const waiting = receive(group, topic, { max: 10, waitMs: 10_000, filter: "sql:n > 1" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await api("POST", `/v1/topics/${topic}/messages?queue=1`, {
      messages: [{ body: "one", properties: { n: "1" } }],
    });
    await api("POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [{ body: "two", properties: { n: "2" } }],
    });
    const r = await waiting;
    expect(bodiesOf(r)).toEqual(["two"]);
  });

  it("answers 400 with the position for a malformed expression, claiming nothing", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, ORDERS);
    const bad = await receive(group, topic, { max: 10, filter: "sql:amount > 'x" });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "BAD_REQUEST", position: 13 });
    for (const filter of [42, ["a"], "x".repeat(5000)]) {
      const r = await receive(group, topic, { max: 10, filter });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
    }
    const all = await receive(group, topic, { max: 10 });
    expect(bodiesOf(all)).toEqual(ORDERS.map((m) => m.body));
  });
});
