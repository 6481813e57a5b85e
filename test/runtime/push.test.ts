/**
 * Push delivery inside the runtime: the shard's alarm drives deliveries to
 * a real endpoint on 127.0.0.1 (test/fixtures/push-endpoint/), and the
 * tables say what is pending in between, so nothing waits in memory. Timers
 * are moved into the past in SQLite and fired with runDurableObjectAlarm;
 * the only waits are for the endpoint to see a request (bounded).
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { PUSH_DELIVERIES_PER_INVOCATION } from "../../src/broker/timers/push-timing.ts";
import { verifySignature } from "../../src/protocol/signing.ts";
import { api, createTopic, shardStub, unique } from "./helpers.ts";
import { openSession } from "./session-helpers.ts";
import { countRows, makePushDue, pushRow, storedTrace } from "./storage-sql.ts";

const base = inject("pushEndpoint");

interface Call {
  at: number;
  headers: Record<string, string>;
  body: string;
}

async function setMode(name: string, mode: Record<string, unknown>): Promise<void> {
  const r = await fetch(`${base}/_mode/${name}`, { method: "PUT", body: JSON.stringify(mode) });
  expect(r.status).toBe(204);
}

async function calls(name: string): Promise<Call[]> {
  return (await (await fetch(`${base}/_calls/${name}`)).json()) as Call[];
}

/** Waits (bounded) until the endpoint has seen `count` deliveries for `name`. */
async function delivered(name: string, count: number, ms = 10_000): Promise<Call[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await calls(name);
    if (got.length >= count || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits (bounded) until `cond` holds on the subscription's stats. */
async function statsUntil(name: string, cond: (s: any) => boolean, ms = 10_000): Promise<any> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = (await api("GET", `/v1/push/${name}`)).body.stats;
    if (cond(s) || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function subscribe(topic: string, mode: Record<string, unknown>, config = {}) {
  const name = unique("hook");
  await setMode(name, mode);
  const r = await api("PUT", `/v1/push/${name}`, { topic, url: `${base}/s/${name}`, ...config });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return { name, secret: r.body.signingSecret as string };
}

async function send(topic: string, messages: Record<string, unknown>[], headers = {}) {
  const r = await api(
    "POST",
    `/v1/topics/${topic}/messages`,
    { messages },
    { authorization: "Bearer test-admin", "content-type": "application/json", ...headers },
  );
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.results;
}

describe("push delivery driven by the shard's alarm", () => {
  it("delivers a send at once, signed with the subscription's secret over the raw body", async () => {
    const topic = await createTopic({ queues: 1 });
    const { name, secret } = await subscribe(topic, { status: 204 });
    const [sent] = await send(topic, [{ body: "hello", tag: "T" }]);
    const [call] = await delivered(name, 1);
    expect(call).toBeDefined();
    expect(JSON.parse(call!.body)).toMatchObject({ msgId: sent.msgId, body: "hello", tag: "T" });
    expect(call!.headers["x-edgemq-msg-id"]).toBe(sent.msgId);
    const check = await verifySignature(new Headers(call!.headers), call!.body, {
      secrets: [secret],
    });
    expect(check).toEqual({ ok: true });
    const s = await statsUntil(name, (x) => x.delivered === 1);
    expect(s).toMatchObject({ delivered: 1, inflight: 0, lag: 0 });
  });

  it("keeps a failed delivery in the tables until its delay, then the alarm delivers it again", async () => {
    const topic = await createTopic({ queues: 1 });
    const { name } = await subscribe(topic, { status: 500 }, { retryDelaysMs: [60_000] });
    await send(topic, [{ body: "again" }]);
    expect(await delivered(name, 1)).toHaveLength(1);
    await statsUntil(name, (s) => s.failed === 1);
    // Pending in the tables: a retry a minute away, the endpoint backing off, the alarm set.
    const row = await pushRow(topic, 0, name);
    expect(row).toMatchObject({ failures: 1, failed: 1 });
    expect(row!.backoff_until).toBeGreaterThan(Date.now() + 50_000);
    expect(await countRows(topic, "inflight", { popState: "retry" })).toBe(1);
    await setMode(name, { status: 200 });
    // Nothing goes before its time: an alarm now delivers nothing.
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect(await calls(name)).toHaveLength(1);
    expect(await makePushDue(topic, 0, name)).toBeGreaterThan(0);
    expect(await runDurableObjectAlarm(shardStub(topic, 0))).toBe(true);
    const both = await delivered(name, 2);
    expect(both.map((c) => JSON.parse(c.body).reconsumeTimes)).toEqual([0, 1]);
    await statsUntil(name, (s) => s.delivered === 1);
    expect(await pushRow(topic, 0, name)).toMatchObject({
      failures: 0,
      backoff_until: null,
      delivered: 1,
    });
  });

  it("delivers again a claim that lapsed (as one held by an object that was lost)", async () => {
    const topic = await createTopic({ queues: 1 });
    const { name } = await subscribe(topic, { status: 200 }, { paused: true });
    await send(topic, [{ body: "orphan" }]);
    // The group's claim, made as a push claim would be, and never settled.
    const claimed = await api("POST", `/v1/groups/${name}/topics/${topic}/receive`, {
      invisibleMs: 60_000,
    });
    expect(claimed.body.messages).toHaveLength(1);
    expect((await api("PUT", `/v1/push/${name}`, { paused: false })).status).toBe(200);
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect(await calls(name)).toHaveLength(0);
    await makePushDue(topic, 0, name);
    await runDurableObjectAlarm(shardStub(topic, 0));
    const [call] = await delivered(name, 1);
    expect(JSON.parse(call!.body)).toMatchObject({ body: "orphan", reconsumeTimes: 1 });
  });

  it("moves a message to the DLQ once after maxReconsumeTimes, and an alarm after delivers nothing", async () => {
    const topic = await createTopic({ queues: 1 });
    const { name } = await subscribe(
      topic,
      { status: 503, retryAfter: "1" },
      { maxReconsumeTimes: 1, retryDelaysMs: [60_000] },
    );
    await send(topic, [{ body: "dead" }]);
    expect(await delivered(name, 1)).toHaveLength(1);
    await statsUntil(name, (s) => s.failed === 1);
    await makePushDue(topic, 0, name);
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect(await delivered(name, 2)).toHaveLength(2);
    const s = await statsUntil(name, (x) => x.dlq === 1);
    expect(s).toMatchObject({ dlq: 1, failed: 2, inflight: 0, lastError: "HTTP 503" });
    await makePushDue(topic, 0, name);
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect(await calls(name)).toHaveLength(2);
    expect(await countRows(topic, "dlq")).toBe(1);
  });

  it("a paused subscription is skipped by the alarm; DELETE removes it from the shard", async () => {
    const topic = await createTopic({ queues: 1 });
    const { name } = await subscribe(topic, { status: 200 }, { paused: true });
    await send(topic, [{ body: "held" }]);
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect(await calls(name)).toHaveLength(0);
    expect((await api("DELETE", `/v1/push/${name}`)).status).toBe(200);
    expect(await pushRow(topic, 0, name)).toBeUndefined();
  });

  it("installs a topic's subscriptions on queues added later", async () => {
    const topic = await createTopic({ queues: 1 });
    const { name } = await subscribe(topic, { status: 200 });
    expect((await api("PUT", `/v1/topics/${topic}`, { queues: 2 })).status).toBe(200);
    expect(await pushRow(topic, 1, name)).toMatchObject({ delivered: 0 });
    await send(topic, [{ body: "on queue 1" }], {});
    const r = await api("POST", `/v1/topics/${topic}/messages?queue=1`, {
      messages: [{ body: "pinned" }],
    });
    expect(r.status).toBe(200);
    await delivered(name, 2);
    expect((await statsUntil(name, (s) => s.delivered === 2)).delivered).toBe(2);
  });
});

describe("deliveries per invocation", () => {
  it("a backlog longer than one invocation may deliver is delivered whole, once each", async () => {
    const topic = await createTopic({ queues: 1 });
    const { name } = await subscribe(topic, { status: 200 }, { paused: true });
    const total = PUSH_DELIVERIES_PER_INVOCATION + 60;
    for (let i = 0; i < total; i += 100) {
      await send(
        topic,
        Array.from({ length: Math.min(100, total - i) }, (_, j) => ({ body: `m${i + j}` })),
      );
    }
    // One call resumes it: the chain it starts may deliver only so many.
    expect((await api("PUT", `/v1/push/${name}`, { paused: false })).status).toBe(200);
    const got = await delivered(name, total, 30_000);
    expect(new Set(got.map((c) => JSON.parse(c.body).msgId)).size).toBe(total);
    expect((await statsUntil(name, (s) => s.delivered === total)).lag).toBe(0);
  });
});

describe("trace context in the shard", () => {
  it("stores traceparent and tracestate with the message and delivers them as headers", async () => {
    const topic = await createTopic({ queues: 1 });
    const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const { name } = await subscribe(topic, { status: 200 });
    await send(topic, [{ body: "traced", traceparent: tp, tracestate: "v=1" }]);
    expect(await storedTrace(topic, 0)).toEqual({ traceparent: tp, tracestate: "v=1" });
    const [call] = await delivered(name, 1);
    expect(call!.headers.traceparent).toBe(tp);
    expect(call!.headers.tracestate).toBe("v=1");
  });

  it("carries it through session frames unchanged: a session send, an HTTP send, and what a session is pushed", async () => {
    const topic = await createTopic({ queues: 1 });
    const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const other = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const consumer = await openSession(topic, 0, { group: unique("g") });
    await consumer.next("ready");
    consumer.send({ type: "subscribe", id: 1, mode: "receive", credit: 10 });
    await consumer.next("subscribed");
    const producer = await openSession(topic, 0);
    await producer.next("ready");
    producer.send({
      type: "send",
      id: 1,
      messages: [{ body: "by session", traceparent: tp, tracestate: "s=1" }],
    });
    await send(topic, [{ body: "by http" }], { traceparent: other });
    const pushed: any[] = [];
    while (pushed.length < 2) pushed.push(...(await consumer.next("messages")).messages);
    expect(pushed.map((m) => [m.body, m.traceparent, m.tracestate])).toEqual([
      ["by session", tp, "s=1"],
      ["by http", other, undefined],
    ]);
    consumer.close();
    producer.close();
  });

  it("keeps the trace context of a scheduled message through its move into the log", async () => {
    const topic = await createTopic({ queues: 1 });
    const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    await send(topic, [{ body: "later", delayMs: 60_000 }], { traceparent: tp });
    const { passTimeForScheduled } = await import("./storage-sql.ts");
    await passTimeForScheduled(topic, 61_000);
    await runDurableObjectAlarm(shardStub(topic, 0));
    const r = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0`);
    expect(r.body.messages[0]).toMatchObject({ body: "later", traceparent: tp });
  });
});
