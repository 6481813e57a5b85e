/**
 * The client SDK against the real local server (workerd, SQLite on disk):
 * every client class end to end over HTTP, as an application would use it.
 */
import "fake-indexeddb/auto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "../../scripts/local-server.ts";
import {
  Admin,
  EdgemqError,
  type EdgemqEvent,
  type Message,
  MemoryOffsetStore,
  Producer,
  PullConsumer,
  PushConsumer,
  SimpleConsumer,
} from "../../client/index.ts";

const ADMIN_TOKEN = "sdk-test-admin";
const TOKEN_SECRET = "sdk-test-secret";

let server: LocalServer;
let dataDir: string;
let admin: Admin;
let conn: { endpoint: string; token: string; sessions: false };

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "edgemq-sdk-"));
  server = await startLocalServer({
    port: 0,
    dataDir,
    quiet: true,
    env: { ADMIN_TOKEN, TOKEN_SECRET },
  });
  // This file is the SDK over HTTP; session-sdk.test.ts runs it over sessions.
  conn = { endpoint: server.url, token: ADMIN_TOKEN, sessions: false };
  admin = new Admin(conn);
});

afterAll(async () => {
  await server?.stop("SIGTERM", { killAfterMs: 5000 });
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

let n = 0;
/** A fresh topic (and its name doubles as a group name prefix). */
async function topic(queues = 2): Promise<string> {
  const name = `sdk-${Date.now().toString(36)}-${n++}`;
  await admin.createTopic(name, { queues });
  return name;
}

/** fetch that counts the send requests it carries. */
function countingFetch() {
  const counter = { sends: 0 };
  const f = ((input: RequestInfo | URL, init?: RequestInit) => {
    if (init?.method === "POST" && /\/messages(\?|$)/.test(String(input))) counter.sends++;
    return fetch(input, init);
  }) as typeof fetch;
  return { fetch: f, counter };
}

async function drainAll(consumer: PullConsumer, expected: number, rounds = 20): Promise<Message[]> {
  const got: Message[] = [];
  for (let i = 0; i < rounds && got.length < expected; i++) got.push(...(await consumer.poll()));
  return got;
}

describe("Admin", () => {
  it("creates, reads and lists topics, and answers health", async () => {
    expect(await admin.health()).toBe(true);
    const t = await topic(3);
    const details = await admin.getTopic(t);
    expect(details).toMatchObject({ topic: t, queues: 3 });
    expect(details.queueStats).toHaveLength(3);
    expect((await admin.listTopics()).map((c) => c.topic)).toContain(t);
    expect(await admin.route(t)).toEqual({ topic: t, queues: 3 });
  });

  it("rejects an unknown topic with TOPIC_NOT_FOUND as an EdgemqError", async () => {
    const err = await admin.getTopic("no-such-topic-here").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EdgemqError);
    expect((err as EdgemqError).code).toBe("TOPIC_NOT_FOUND");
  });

  it("mints a scoped token that lets a producer publish to its topics only", async () => {
    const t = await topic();
    const token = await admin.createToken({ sub: "web", publish: [t], ttlSeconds: 600 });
    const producer = new Producer({ endpoint: server.url, token });
    expect((await producer.send({ topic: t, body: "scoped" })).status).toBe("stored");
    const other = await topic();
    await expect(producer.send({ topic: other, body: "x" })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await producer.close();
  });

  it("finds a message by id and by key, and reports lag", async () => {
    const t = await topic(1);
    const producer = new Producer(conn);
    const sent = await producer.send({ topic: t, body: "findme", keys: ["order-17"] });
    const found = await admin.queryMessage(t, sent.msgId);
    expect(found).toMatchObject({ msgId: sent.msgId, body: "findme" });
    expect((await admin.queryByKey(t, "order-17")).map((m) => m.msgId)).toEqual([sent.msgId]);
    await admin.resetOffsets(`${t}-g`, t, "earliest");
    expect(await admin.totalLag(`${t}-g`, t)).toBe(1);
    await admin.resetOffsets(`${t}-g`, t, "latest");
    expect(await admin.totalLag(`${t}-g`, t)).toBe(0);
    await producer.close();
  });
});

describe("Producer", () => {
  it("batches concurrent sends into one request", async () => {
    const t = await topic();
    const { fetch: f, counter } = countingFetch();
    const producer = new Producer({ ...conn, fetch: f, batch: { lingerMs: 20 } });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => producer.send({ topic: t, body: `m${i}` })),
    );
    expect(results.every((r) => r.status === "stored")).toBe(true);
    expect(new Set(results.map((r) => r.msgId)).size).toBe(50);
    expect(counter.sends).toBe(1);
    await producer.close();
  });

  it("retries a send whose answer was lost with the same msgId, and the broker answers duplicate", async () => {
    const t = await topic(1);
    let lost = 0;
    const lossy = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const response = await fetch(input, init);
      if (init?.method === "POST" && lost++ === 0) {
        await response.text();
        throw new TypeError("fetch failed"); // The broker stored it; the answer never arrived.
      }
      return response;
    }) as typeof fetch;
    const producer = new Producer({ ...conn, fetch: lossy, retry: { baseMs: 10 } });
    const result = await producer.send({ topic: t, body: "exactly once" });
    expect(result.status).toBe("duplicate");
    const stats = await admin.getTopic(t);
    expect(stats.queueStats[0]!.maxOffset).toBe(1);
    await producer.close();
  });

  it("keeps order per sharding key on one queue", async () => {
    const t = await topic(4);
    const producer = new Producer(conn);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        producer.send({ topic: t, body: `${i}`, shardingKey: `user-${i % 3}` }),
      ),
    );
    for (let k = 0; k < 3; k++) {
      const mine = results.filter((_, i) => i % 3 === k) as { queue: number; offset: number }[];
      expect(new Set(mine.map((r) => r.queue)).size).toBe(1);
      const offsets = mine.map((r) => r.offset);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    }
    await producer.close();
  });

  it("schedules a delayed message and can recall it before it is due", async () => {
    const t = await topic(1);
    const producer = new Producer(conn);
    const scheduled = await producer.send({ topic: t, body: "later", delayMs: 60_000 });
    expect(scheduled.status).toBe("scheduled");
    await producer.recall(t, scheduled.msgId);
    await expect(producer.recall(t, scheduled.msgId)).rejects.toBeInstanceOf(EdgemqError);
    await producer.close();
  });

  it("sends a batch all or nothing", async () => {
    const t = await topic(1);
    const producer = new Producer(conn);
    const results = await producer.sendBatch([
      { topic: t, body: "a" },
      { topic: t, body: "b" },
    ]);
    expect(results.map((r) => r.status)).toEqual(["stored", "stored"]);
    await producer.close();
  });

  it("commits a transaction by the local result, and a rolled-back one is never delivered", async () => {
    const t = await topic(1);
    const producer = new Producer({ ...conn, producerGroup: `${t}-pg` });
    const committed = await producer.sendInTransaction(
      { topic: t, body: "commit me" },
      () => "commit",
    );
    expect(committed.status).toBe("committed");
    const rolledBack = await producer.sendInTransaction(
      { topic: t, body: "roll me back" },
      () => "rollback",
    );
    expect(rolledBack.status).toBe("rolledBack");
    const consumer = new PullConsumer({
      ...conn,
      group: `${t}-g`,
      topic: t,
      mode: "broadcasting",
      consumeFrom: "earliest",
      waitMs: 500,
    });
    const got = await drainAll(consumer, 1, 3);
    expect(got.map((m) => m.body)).toEqual(["commit me"]);
    await consumer.shutdown();
    await producer.close();
  });

  it("with an outbox, queues while offline and delivers everything exactly once when back online", async () => {
    const t = await topic(2);
    const events = new EventTarget();
    let online = false;
    const producer = new Producer({
      ...conn,
      outbox: {
        name: `sdk-outbox-${t}`,
        isOnline: () => online,
        onlineEvents: events,
        backoff: { baseMs: 20 },
      },
    });
    const queued = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        producer.send({ topic: t, body: `o${i}`, shardingKey: `k${i % 2}` }),
      ),
    );
    expect(queued.every((r) => r.status === "queued")).toBe(true);
    const drained = new Promise((r) =>
      producer.outbox!.addEventListener("drained", r, { once: true }),
    );
    online = true;
    events.dispatchEvent(new Event("online"));
    await drained;
    expect(await producer.outbox!.pending()).toBe(0);
    const consumer = new PullConsumer({
      ...conn,
      group: `${t}-g`,
      topic: t,
      mode: "broadcasting",
      consumeFrom: "earliest",
      waitMs: 200,
    });
    const got = await drainAll(consumer, 20);
    expect(got.map((m) => m.body).sort()).toEqual(queued.map((_, i) => `o${i}`).sort());
    for (const k of ["k0", "k1"]) {
      const bodies = got.filter((m) => m.shardingKey === k).map((m) => Number(m.body.slice(1)));
      expect(bodies).toEqual([...bodies].sort((a, b) => a - b));
    }
    await consumer.shutdown();
    await producer.close();
  });
});

describe("SimpleConsumer", () => {
  it("receives, acks, and a nacked message comes back", async () => {
    const t = await topic(2);
    const group = `${t}-simple`;
    await admin.createGroup(group, { retryDelaysMs: [200] });
    const producer = new Producer(conn);
    await producer.sendBatch([
      { topic: t, body: "one", queue: 0 },
      { topic: t, body: "two", queue: 0 },
    ]);
    const consumer = new SimpleConsumer({ ...conn, group, topic: t, waitMs: 2000 });
    const first = await consumer.receive({ max: 10 });
    expect(first.map((m) => m.body).sort()).toEqual(["one", "two"]);
    const one = first.find((m) => m.body === "one")!;
    const two = first.find((m) => m.body === "two")!;
    await consumer.ack(one);
    await consumer.changeInvisibleDuration(two, 5000);
    await consumer.nack(two, { delayMs: 100 });
    const again = await consumer.receive({ max: 10, waitMs: 5000 });
    expect(again.map((m) => m.body)).toEqual(["two"]);
    expect(again[0]!.reconsumeTimes).toBe(1);
    await consumer.ack(again[0]!);
    await expect(consumer.ack(one)).rejects.toBeInstanceOf(EdgemqError);
    await producer.close();
  });
});

describe("SimpleConsumer acks within the broker's 64 KiB body limit", () => {
  it("acks 1000 long receipts in as many requests as the bound needs, every one settled", async () => {
    // Names near the 127-character limit make receipts of about 300 bytes.
    const t = `sdk-long-${Date.now().toString(36)}-${n++}-`.padEnd(127, "t");
    const group = `g-${t}`.slice(0, 127);
    await admin.createTopic(t, { queues: 1 });
    const producer = new Producer(conn);
    await producer.sendBatch(
      Array.from({ length: 1000 }, (_, i) => ({ topic: t, body: String(i) })),
    );
    const acks: number[] = [];
    const f = ((input: RequestInfo | URL, init?: RequestInit) => {
      if (String(input).endsWith("/ack")) acks.push(String(init?.body ?? "").length);
      return fetch(input, init);
    }) as typeof fetch;
    const consumer = new SimpleConsumer({ ...conn, fetch: f, group, topic: t, waitMs: 0 });
    const got = await consumer.receive({ max: 1000 });
    expect(got).toHaveLength(1000);
    expect(got[0]!.receipt!.length).toBeGreaterThan(250);
    const results = await consumer.ackMany(got);
    expect(results.filter((r) => "ok" in r)).toHaveLength(1000);
    expect(acks.length).toBeGreaterThan(1);
    for (const bytes of acks) expect(bytes).toBeLessThanOrEqual(64 * 1024);
    const offsets = await admin.getGroup(group);
    expect(offsets.topics[t]![0]).toMatchObject({ lag: 0, inflight: 0 });
    await producer.close();
  });
});

describe("PushConsumer", () => {
  it("handles every message, retries a failed one, and shuts down cleanly", async () => {
    const t = await topic(2);
    const group = `${t}-push`;
    await admin.createGroup(group, { retryDelaysMs: [100] });
    const producer = new Producer(conn);
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => producer.send({ topic: t, body: `p${i}` })),
    );
    const consumer = new PushConsumer({ ...conn, group, concurrency: 4, waitMs: 1000 });
    consumer.addEventListener("error", () => {});
    const handled: string[] = [];
    let failedOnce = false;
    const done = new Promise<void>((resolve) => {
      consumer.subscribe(t, (m) => {
        if (m.body === "p3" && !failedOnce) {
          failedOnce = true;
          throw new Error("first try fails");
        }
        handled.push(m.body);
        if (handled.length === 10) resolve();
      });
    });
    await done;
    await consumer.shutdown();
    expect(handled.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `p${i}`).sort());
    expect(await admin.totalLag(group, t)).toBe(0);
    await producer.close();
  });

  it("moves a message to the DLQ after its last failure, and resend brings it back", async () => {
    const t = await topic(1);
    const group = `${t}-dlq`;
    await admin.createGroup(group, { maxReconsumeTimes: 0 });
    const producer = new Producer(conn);
    const sent = await producer.send({ topic: t, body: "poison" });
    const consumer = new SimpleConsumer({ ...conn, group, topic: t, waitMs: 2000 });
    const [m] = await consumer.receive();
    await consumer.nack(m!);
    const dlq = await admin.listDlq(group);
    expect(dlq.map((d) => d.msgId)).toEqual([sent.msgId]);
    await admin.resendDlq(group, [sent.msgId]);
    const back = await consumer.receive({ waitMs: 5000 });
    expect(back.map((d) => d.msgId)).toEqual([sent.msgId]);
    await consumer.ack(back[0]!);
    await producer.close();
  });
});

describe("PullConsumer", () => {
  it("in clustering mode is assigned every queue when alone, reads them all and commits offsets", async () => {
    const t = await topic(3);
    const group = `${t}-pull`;
    const producer = new Producer(conn);
    await Promise.all(
      Array.from({ length: 9 }, (_, i) => producer.send({ topic: t, body: `c${i}`, queue: i % 3 })),
    );
    await admin.resetOffsets(group, t, "earliest");
    const consumer = new PullConsumer({ ...conn, group, topic: t, waitMs: 500 });
    const got = await drainAll(consumer, 9);
    expect(consumer.assignment()).toEqual([0, 1, 2]);
    expect(got.map((m) => m.body).sort()).toEqual(
      Array.from({ length: 9 }, (_, i) => `c${i}`).sort(),
    );
    await consumer.commit();
    expect(await admin.totalLag(group, t)).toBe(0);
    await consumer.shutdown();
    await producer.close();
  });

  it("splits queues between two members of a group", async () => {
    const t = await topic(4);
    const group = `${t}-split`;
    const a = new PullConsumer({ ...conn, group, topic: t, waitMs: 100 });
    const b = new PullConsumer({ ...conn, group, topic: t, waitMs: 100 });
    await a.start();
    await b.start();
    await a.heartbeat();
    const qa = a.assignment();
    const qb = b.assignment();
    expect([...qa, ...qb].sort()).toEqual([0, 1, 2, 3]);
    expect(qa).toHaveLength(2);
    await a.shutdown();
    await b.shutdown();
  });

  it("in broadcasting mode keeps offsets client-side and seeks by timestamp", async () => {
    const t = await topic(1);
    const producer = new Producer(conn);
    await producer.send({ topic: t, body: "old" });
    await new Promise((r) => setTimeout(r, 30));
    const cut = Date.now();
    await new Promise((r) => setTimeout(r, 30));
    await producer.send({ topic: t, body: "new" });
    const store = new MemoryOffsetStore();
    const options = {
      ...conn,
      group: `${t}-bc`,
      topic: t,
      mode: "broadcasting" as const,
      consumeFrom: "earliest" as const,
      offsetStore: store,
      waitMs: 200,
    };
    const consumer = new PullConsumer(options);
    expect((await drainAll(consumer, 2)).map((m) => m.body)).toEqual(["old", "new"]);
    await consumer.shutdown();
    expect(await store.load(`${t}-bc`, t)).toEqual({ 0: 2 });

    const rewound = new PullConsumer(options);
    await rewound.seekToTimestamp(cut);
    expect((await drainAll(rewound, 1)).map((m) => m.body)).toEqual(["new"]);
    await rewound.shutdown();
    await producer.close();
  });

  it("a long-poll returns as soon as a message lands", async () => {
    const t = await topic(1);
    const consumer = new PullConsumer({
      ...conn,
      group: `${t}-lp`,
      topic: t,
      mode: "broadcasting",
      waitMs: 10_000,
    });
    await consumer.start();
    await consumer.seekToEnd();
    const started = Date.now();
    const polling = consumer.poll();
    await new Promise((r) => setTimeout(r, 200));
    const producer = new Producer(conn);
    await producer.send({ topic: t, body: "wake up" });
    const got = await polling;
    expect(got.map((m) => m.body)).toEqual(["wake up"]);
    expect(Date.now() - started).toBeLessThan(5000);
    await consumer.shutdown();
    await producer.close();
  });
});

describe("errors", () => {
  it("carry the contract code on a bad token", async () => {
    const producer = new Producer({ endpoint: server.url, token: "not-a-token" });
    const err = await producer.send({ topic: "whatever", body: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EdgemqError);
    expect((err as EdgemqError).code).toBe("UNAUTHORIZED");
    await producer.close();
  });

  it("outbox events carry typed details", async () => {
    const t = await topic(1);
    const producer = new Producer({ ...conn, outbox: { name: `sdk-outbox-ev-${t}` } });
    const sent = new Promise<EdgemqEvent<{ msgId: string }>>((r) =>
      producer.outbox!.addEventListener("sent", (e) => r(e as EdgemqEvent<{ msgId: string }>), {
        once: true,
      }),
    );
    const result = await producer.send({ topic: t, body: "x" });
    expect(result.status).toBe("stored");
    expect((await sent).detail.msgId).toBe(result.msgId);
    await producer.close();
  });
});
