/**
 * Byte budgets on every answer that carries messages: near-1-MiB messages by
 * the dozen are answered a few at a time (never an RPC over the platform's
 * 32 MiB), always at least one, and a reader pages on to get every one.
 * Receive claims only what it returns.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MESSAGE_OVERHEAD_BYTES } from "../../src/protocol/encoded-size.ts";
import { Limits } from "../../src/protocol/limits.ts";
import { queueFor } from "../../src/protocol/routing.ts";
import { api, createTopic, shardStub, unique } from "./helpers.ts";
import { countRows, makeDue, passTimeForScheduled } from "./storage-sql.ts";

const BIG = 1000 * 1024;
/** A body of `BIG` bytes that says which message it is. */
const big = (i: number) => `#${i}:`.padEnd(BIG, "x");
const index = (body: string) => Number(/^#(\d+):/.exec(body)![1]);

/** Sends `n` big messages, four per request (the 4 MiB request limit). */
async function sendBig(
  topic: string,
  n: number,
  extra: (i: number) => Record<string, unknown> = () => ({}),
) {
  for (let i = 0; i < n; i += 4) {
    const messages = [];
    for (let j = i; j < Math.min(n, i + 4); j++) messages.push({ body: big(j), ...extra(j) });
    const r = await api("POST", `/v1/topics/${topic}/messages?queue=0`, { messages });
    expect(r.status, JSON.stringify(r.body).slice(0, 200)).toBe(200);
  }
}

/** An answer's messages fit the budget, or it is a single message. */
function withinBudget(messages: { body: string }[]): void {
  expect(messages.length).toBeGreaterThan(0);
  const bytes = messages.reduce((n, m) => n + m.body.length + MESSAGE_OVERHEAD_BYTES, 0);
  if (messages.length > 1) expect(bytes).toBeLessThanOrEqual(Limits.maxAnswerBytes);
}

describe("byte budgets", () => {
  it("answers a pull of 40 near-1-MiB messages a budget at a time, and pages on to every one", async () => {
    const topic = await createTopic({ queues: 1 });
    await sendBig(topic, 40);
    const seen: number[] = [];
    let offset = 0;
    for (let round = 0; round < 40 && seen.length < 40; round++) {
      const r = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=${offset}&max=40`);
      expect(r.status).toBe(200);
      withinBudget(r.body.messages);
      expect(r.body.messages.length).toBeLessThan(40);
      expect(r.body.nextOffset).toBe(offset + r.body.messages.length);
      seen.push(...r.body.messages.map((m: { body: string }) => index(m.body)));
      offset = r.body.nextOffset;
    }
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it("claims with receive only what it returns; the rest stays for the next receive", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await sendBig(topic, 24);
    const first = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 24 });
    expect(first.status).toBe(200);
    withinBudget(first.body.messages);
    expect(first.body.messages.length).toBeLessThan(24);
    expect(await countRows(topic, "inflight")).toBe(first.body.messages.length);
    const seen = first.body.messages.map((m: { body: string }) => index(m.body));
    for (let round = 0; round < 24 && seen.length < 24; round++) {
      const r = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 24 });
      withinBudget(r.body.messages);
      seen.push(...r.body.messages.map((m: { body: string }) => index(m.body)));
    }
    expect(seen).toEqual(Array.from({ length: 24 }, (_, i) => i));
    // Every one was handed out once; none lapsed unseen into the dead-letter queue.
    expect(await countRows(topic, "inflight")).toBe(24);
    expect(await countRows(topic, "dlq")).toBe(0);
  });

  it("keeps a receive over several queues within one budget, and claims no more than it returns", async () => {
    const topic = await createTopic({ queues: 3 });
    const group = unique("g");
    // Six big messages on each queue (routed by sharding key).
    const keys = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    const byQueue = new Map<number, string>();
    for (const k of keys) if (!byQueue.has(queueFor(k, 3))) byQueue.set(queueFor(k, 3), k);
    expect(byQueue.size).toBe(3);
    for (const [, key] of byQueue) {
      for (let i = 0; i < 6; i += 3) {
        const messages = [0, 1, 2].map((j) => ({ body: big(i + j), shardingKey: key }));
        expect((await api("POST", `/v1/topics/${topic}/messages`, { messages })).status).toBe(200);
      }
    }
    const r = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 18 });
    withinBudget(r.body.messages);
    let claimed = 0;
    for (const q of [0, 1, 2]) claimed += await countRows(topic, "inflight", { queue: q });
    expect(claimed).toBe(r.body.messages.length);
  });

  it("answers queries by key and by time within the budget, over every queue, at least one message", async () => {
    const topic = await createTopic({ queues: 2 });
    const from = Date.now() - 1;
    for (let i = 0; i < 12; i += 4) {
      const messages = [0, 1, 2, 3].map((j) => ({ body: big(i + j), keys: ["order-1"] }));
      expect((await api("POST", `/v1/topics/${topic}/messages`, { messages })).status).toBe(200);
    }
    const byKey = await api("GET", `/v1/topics/${topic}/messages?key=order-1&limit=100`);
    expect(byKey.status).toBe(200);
    withinBudget(byKey.body.messages);
    expect(byKey.body.messages.length).toBeLessThan(12);
    const byTime = await api(
      "GET",
      `/v1/topics/${topic}/messages?from=${from}&to=${Date.now() + 1}&limit=100`,
    );
    expect(byTime.status).toBe(200);
    withinBudget(byTime.body.messages);
    // Oldest first across queues: a prefix of the whole order.
    const all = byTime.body.messages as { storedAt: number; queue: number; offset: number }[];
    const sorted = [...all].sort(
      (a, b) => a.storedAt - b.storedAt || a.queue - b.queue || a.offset - b.offset,
    );
    expect(all).toEqual(sorted);
  });

  it("lists dead letters within the budget, at least one", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    expect((await api("PUT", `/v1/groups/${group}`, { maxReconsumeTimes: 0 })).status).toBe(200);
    await sendBig(topic, 12);
    for (let round = 0; round < 12; round++) {
      const r = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 12 });
      if (r.body.messages.length === 0) break;
    }
    expect(await countRows(topic, "inflight")).toBe(12);
    await makeDue(topic, 0, group);
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect(await countRows(topic, "dlq")).toBe(12);
    const dlq = await api("GET", `/v1/groups/${group}/dlq/messages?limit=100`);
    expect(dlq.status).toBe(200);
    withinBudget(dlq.body.messages);
    expect(dlq.body.messages.length).toBeLessThan(12);
  });

  it("moves due scheduled messages a budget at a time, and the alarm comes back for the rest", async () => {
    const topic = await createTopic({ queues: 1 });
    await sendBig(topic, 16, () => ({ delayMs: 60_000 }));
    expect(await countRows(topic, "scheduled")).toBe(16);
    await passTimeForScheduled(topic, 120_000);
    const stub = shardStub(topic, 0);
    await runDurableObjectAlarm(stub);
    const moved = await countRows(topic, "log");
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(16);
    for (let i = 0; i < 16 && (await countRows(topic, "scheduled")) > 0; i++) {
      expect(await runDurableObjectAlarm(stub)).toBe(true);
    }
    expect(await countRows(topic, "log")).toBe(16);
  });
});
