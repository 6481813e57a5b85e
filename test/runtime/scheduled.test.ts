/**
 * Invariant 5: a scheduled message is invisible before its time and visible
 * promptly after. Time is moved by rewriting the timer index (`scheduled.due_at`)
 * and the alarm is fired with `runDurableObjectAlarm`, except where a test
 * says it waits for the real alarm.
 */
import {
  abortAllDurableObjects,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BATCH, SOON_HORIZON_MS } from "../../src/broker/timers/timing.ts";
import type { QueueShard } from "../../src/broker/queue-shard.ts";
import { api, createTopic, shardStub, unique } from "./helpers.ts";
import {
  countRows,
  passTimeForScheduled,
  setScheduledExpiry,
  setStoredExpiry,
} from "./storage-sql.ts";

const HOUR = 3_600_000;

async function send(topic: string, messages: unknown[], query = "") {
  return api("POST", `/v1/topics/${topic}/messages${query}`, { messages });
}

async function pull(topic: string, queue = 0, offset = 0, max = 1000) {
  const r = await api(
    "GET",
    `/v1/topics/${topic}/queues/${queue}/messages?offset=${offset}&max=${max}`,
  );
  expect(r.status).toBe(200);
  return r.body as {
    messages: { body: string; msgId: string; offset: number }[];
    maxOffset: number;
  };
}

async function receive(topic: string, group: string, max = 32) {
  const r = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max, waitMs: 0 });
  expect(r.status).toBe(200);
  return r.body.messages as { body: string }[];
}

async function queueStats(topic: string) {
  return (await api("GET", `/v1/topics/${topic}`)).body.queueStats as {
    messages: number;
    scheduled: number;
    expired: number;
  }[];
}

/** Moves every timer of the shard `ms` earlier: as if `ms` had passed for them. */
async function advance(topic: string, ms: number, queue = 0): Promise<void> {
  await passTimeForScheduled(topic, ms, queue);
}

/** Rows still waiting in the shard's timer index. */
async function waiting(topic: string, queue = 0): Promise<number> {
  return countRows(topic, "scheduled", { queue });
}

/** Fires the alarm until no timer is due (bounded). */
async function drain(topic: string, queue = 0): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const due = await countRows(topic, "scheduled", { queue, dueBy: Date.now() });
    if (due === 0) return;
    await runDurableObjectAlarm(shardStub(topic, queue));
  }
  throw new Error("scheduled messages still due after 50 alarm runs");
}

/** Polls pull until `n` messages are visible, for at most `ms`. */
async function pollUntil(topic: string, n: number, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await pull(topic);
    if (r.messages.length >= n || Date.now() > deadline) return r;
    await new Promise((res) => setTimeout(res, 50));
  }
}

describe("scheduled messages", () => {
  for (const [name, field] of [
    ["delayLevel", { delayLevel: 3 }],
    ["delayMs", { delayMs: 20_000 }],
    ["deliverAt", { deliverAt: Date.now() + HOUR }],
  ] as const) {
    it(`holds a ${name} message invisible until due, then appends it with an offset`, async () => {
      const topic = await createTopic({ queues: 1 });
      const stub = shardStub(topic, 0);
      const group = unique("g");
      const f = name === "deliverAt" ? { deliverAt: Date.now() + HOUR } : field;
      const r = await send(topic, [{ body: `later-${name}`, ...f }]);
      expect(r.status).toBe(200);
      expect(r.body.results[0]).toMatchObject({ status: "scheduled", offset: null, queue: 0 });

      const before = await pull(topic);
      expect(before.messages).toEqual([]);
      expect(before.maxOffset).toBe(0);
      expect(await receive(topic, group)).toEqual([]);
      expect((await queueStats(topic))[0]).toMatchObject({ scheduled: 1, messages: 0 });

      // An alarm that fires early moves nothing.
      await runDurableObjectAlarm(stub);
      expect((await pull(topic)).messages).toEqual([]);

      await advance(topic, 2 * HOUR);
      await drain(topic);
      const after = await pull(topic);
      expect(after.messages.map((m) => [m.body, m.offset, m.msgId])).toEqual([
        [`later-${name}`, 0, r.body.results[0].msgId],
      ]);
      const got = await receive(topic, group);
      expect(got.map((m) => m.body)).toEqual([`later-${name}`]);
      expect((await queueStats(topic))[0]).toMatchObject({ scheduled: 0, messages: 1 });
    });
  }

  it("appends due messages in due-time order, not send order, among immediate ones", async () => {
    const topic = await createTopic({ queues: 1 });
    const now = Date.now();
    await send(topic, [
      { body: "c", deliverAt: now + 30_000 },
      { body: "a", delayMs: 10_000 },
      { body: "now-1" },
      { body: "b", deliverAt: now + 20_000 },
      { body: "far", deliverAt: now + 10 * HOUR },
    ]);
    expect((await pull(topic)).messages.map((m) => m.body)).toEqual(["now-1"]);
    await advance(topic, 25_000);
    await drain(topic);
    expect((await pull(topic)).messages.map((m) => m.body)).toEqual(["now-1", "a", "b"]);
    await advance(topic, 10_000);
    await drain(topic);
    const all = await pull(topic);
    expect(all.messages.map((m) => [m.body, m.offset])).toEqual([
      ["now-1", 0],
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ]);
    expect(await waiting(topic)).toBe(1);
  });

  it("delivers a short real delay on time by itself (no test helper)", async () => {
    const topic = await createTopic({ queues: 1 });
    const r = await send(topic, [{ body: "soon", delayMs: 300 }]);
    expect(r.body.results[0].status).toBe("scheduled");
    expect((await pull(topic)).messages).toEqual([]);
    const got = await pollUntil(topic, 1);
    expect(got.messages.map((m) => m.body)).toEqual(["soon"]);
  });

  it("wakes a long-poll receive when a scheduled message comes due", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    await send(topic, [{ body: "wake", delayMs: 300 }]);
    const r = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { waitMs: 5000 });
    expect(r.body.messages.map((m: { body: string }) => m.body)).toEqual(["wake"]);
  });

  it("stores a message once when the alarm runs twice", async () => {
    const topic = await createTopic({ queues: 1 });
    const stub = shardStub(topic, 0);
    await send(topic, [{ body: "once", delayMs: 60_000 }]);
    await advance(topic, 120_000);
    await runInDurableObject(stub, async (shard: QueueShard) => {
      await shard.alarm();
      await shard.alarm();
    });
    await runDurableObjectAlarm(stub);
    const r = await pull(topic);
    expect(r.messages.map((m) => m.body)).toEqual(["once"]);
    expect(r.maxOffset).toBe(1);
    expect((await queueStats(topic))[0]).toMatchObject({ scheduled: 0, messages: 1 });
  });

  it("moves a burst due at once in bounded batches, all of it, in due order", async () => {
    const topic = await createTopic({ queues: 1 });
    const stub = shardStub(topic, 0);
    const n = 3 * BATCH.scheduled;
    const base = Date.now() + HOUR;
    // Sent in reverse due order: the log must follow due time.
    for (let chunk = 0; chunk < n / 1000; chunk++) {
      const messages = Array.from({ length: 1000 }, (_, j) => {
        const i = n - 1 - (chunk * 1000 + j);
        return { body: `b${i}`, deliverAt: base + i };
      });
      const r = await send(topic, messages);
      expect(r.status).toBe(200);
    }
    expect(await waiting(topic)).toBe(n);
    await advance(topic, 2 * HOUR);
    // One alarm run moves one bounded batch.
    await runInDurableObject(stub, (shard: QueueShard) => shard.alarm());
    const afterOne = await countRows(topic, "log");
    expect(afterOne).toBe(BATCH.scheduled);
    await drain(topic);
    expect(await waiting(topic)).toBe(0);
    const bodies: string[] = [];
    for (let offset = 0; offset < n;) {
      const page = await pull(topic, 0, offset, 1000);
      if (page.messages.length === 0) break;
      bodies.push(...page.messages.map((m) => m.body));
      offset = page.messages.at(-1)!.offset + 1;
    }
    expect(bodies).toEqual(Array.from({ length: n }, (_, i) => `b${i}`));
  });

  it("recalls a message not yet due: 200, and it never arrives", async () => {
    const topic = await createTopic({ queues: 4 });
    const r = await send(topic, [{ body: "recall-me", delayMs: 60_000, msgId: "rc-1" }]);
    const queue = r.body.results[0].queue as number;
    const stub = shardStub(topic, queue);
    const recalled = await api("DELETE", `/v1/topics/${topic}/messages/rc-1`);
    expect(recalled.status).toBe(200);
    expect((await queueStats(topic))[queue]!.scheduled).toBe(0);
    await advance(topic, 120_000);
    await drain(topic);
    await runDurableObjectAlarm(stub);
    expect((await pull(topic, queue)).messages).toEqual([]);
    expect(await waiting(topic)).toBe(0);
    const again = await api("DELETE", `/v1/topics/${topic}/messages/rc-1`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe("MESSAGE_NOT_FOUND");
  });

  it("refuses to recall a delivered message with 409 NOT_RECALLABLE", async () => {
    const topic = await createTopic({ queues: 2 });
    const r = await send(topic, [
      { body: "was-scheduled", delayMs: 60_000, msgId: "nr-1" },
      { body: "immediate", msgId: "nr-2" },
    ]);
    const queue = r.body.results[0].queue as number;
    await advance(topic, 120_000, queue);
    await drain(topic, queue);
    for (const id of ["nr-1", "nr-2"]) {
      const res = await api("DELETE", `/v1/topics/${topic}/messages/${id}`);
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe("NOT_RECALLABLE");
    }
    const unknown = await api("DELETE", `/v1/topics/${topic}/messages/nope`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("MESSAGE_NOT_FOUND");
  });

  it("keeps scheduled messages across a restart of the shard, and its alarm still fires", async () => {
    const topic = await createTopic({ queues: 1 });
    const stub = shardStub(topic, 0);
    await send(topic, [
      { body: "survivor-1", delayMs: 60_000 },
      // Beyond SOON_HORIZON_MS: only the durable alarm will deliver it.
      { body: "survivor-2", delayMs: SOON_HORIZON_MS + 500 },
    ]);
    await evictDurableObject(stub);
    expect(await waiting(topic)).toBe(2);
    // The short one comes through the real alarm armed before the restart.
    const first = await pollUntil(topic, 1, SOON_HORIZON_MS + 5000);
    expect(first.messages.map((m) => m.body)).toEqual(["survivor-2"]);
    await evictDurableObject(stub);
    await advance(topic, 120_000);
    await drain(topic);
    expect((await pull(topic)).messages.map((m) => m.body)).toEqual(["survivor-2", "survivor-1"]);
  });

  it("keeps scheduled messages when every object is aborted (no graceful shutdown)", async () => {
    const topic = await createTopic({ queues: 2 });
    const r = await send(topic, [
      { body: "abort-1", delayMs: 60_000, shardingKey: "k" },
      { body: "abort-2", delayMs: 90_000, shardingKey: "k" },
    ]);
    const queue = r.body.results[0].queue as number;
    await abortAllDurableObjects();
    expect(await waiting(topic, queue)).toBe(2);
    expect((await pull(topic, queue)).messages).toEqual([]);
    await advance(topic, 120_000, queue);
    await drain(topic, queue);
    expect((await pull(topic, queue)).messages.map((m) => m.body)).toEqual(["abort-1", "abort-2"]);
  });
});

describe("expiry", () => {
  it("answers a message already past expireAt with status expired and never delivers it", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    const r = await send(topic, [
      { body: "stale", expireAt: Date.now() - 1000 },
      { body: "fresh", expireAt: Date.now() + HOUR },
    ]);
    expect(
      r.body.results.map((x: { status: string; offset: number | null }) => [x.status, x.offset]),
    ).toEqual([
      ["expired", null],
      ["stored", 0],
    ]);
    expect((await pull(topic)).messages.map((m) => m.body)).toEqual(["fresh"]);
    expect((await receive(topic, group)).map((m) => m.body)).toEqual(["fresh"]);
    expect((await queueStats(topic))[0]).toMatchObject({ expired: 1, messages: 1 });
  });

  it("does not deliver a stored message whose expireAt passed, and counts it once", async () => {
    const topic = await createTopic({ queues: 1 });
    await send(topic, [{ body: "will-expire", expireAt: Date.now() + HOUR }, { body: "keeps" }]);
    await setStoredExpiry(topic, 0, Date.now() - 1);
    expect((await pull(topic)).messages.map((m) => m.body)).toEqual(["keeps"]);
    expect((await receive(topic, unique("g"))).map((m) => m.body)).toEqual(["keeps"]);
    expect((await receive(topic, unique("g"))).map((m) => m.body)).toEqual(["keeps"]);
    expect((await queueStats(topic))[0]!.expired).toBe(1);
  });

  it("drops a scheduled message that expires before it comes due", async () => {
    const topic = await createTopic({ queues: 1 });
    await send(topic, [
      { body: "too-late", delayMs: 60_000, expireAt: Date.now() + 30_000, msgId: "tl-1" },
    ]);
    await setScheduledExpiry(topic, Date.now() - 1);
    await advance(topic, 120_000);
    await drain(topic);
    expect((await pull(topic)).messages).toEqual([]);
    expect((await queueStats(topic))[0]).toMatchObject({ expired: 1, scheduled: 0, messages: 0 });
  });
});

describe("bad scheduling input", () => {
  const now = Date.now();
  const cases: [string, Record<string, unknown>][] = [
    ["two of delayLevel/delayMs", { delayLevel: 1, delayMs: 1000 }],
    ["two of delayMs/deliverAt", { delayMs: 1000, deliverAt: now + 5000 }],
    ["level 0", { delayLevel: 0 }],
    ["level 19", { delayLevel: 19 }],
    ["a fractional level", { delayLevel: 1.5 }],
    ["a negative delayMs", { delayMs: -1 }],
    ["a delayMs over 40 days", { delayMs: 40 * 24 * HOUR + 1 }],
    ["a deliverAt over 40 days ahead", { deliverAt: now + 41 * 24 * HOUR }],
    ["a string delayMs", { delayMs: "1000" }],
    ["a malformed expireAt", { expireAt: "tomorrow" }],
    ["a negative expireAt", { expireAt: -5 }],
    ["a fractional expireAt", { expireAt: now + 0.5 }],
  ];
  for (const [what, fields] of cases) {
    it(`rejects ${what} with 400 and stores nothing of the batch`, async () => {
      const topic = await createTopic({ queues: 2 });
      const r = await send(topic, [
        { body: "good-1" },
        { body: "good-2", delayMs: 5000 },
        { body: "bad", ...fields },
      ]);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
      expect(r.body.error.message).toContain("messages[2]");
      for (const s of await queueStats(topic))
        expect(s).toMatchObject({ messages: 0, scheduled: 0 });
    });
  }

  it("delivers a deliverAt in the past at once, with status stored", async () => {
    const topic = await createTopic({ queues: 1 });
    const r = await send(topic, [
      { body: "past", deliverAt: Date.now() - 60_000 },
      { body: "zero", delayMs: 0 },
    ]);
    expect(
      r.body.results.map((x: { status: string; offset: number }) => [x.status, x.offset]),
    ).toEqual([
      ["stored", 0],
      ["stored", 1],
    ]);
    expect((await pull(topic)).messages.map((m) => m.body)).toEqual(["past", "zero"]);
  });
});
