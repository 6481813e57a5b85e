/**
 * Bounded work: no request or alarm run does unbounded work for a huge
 * backlog, a huge batch or many timers. A selective pull scans at most
 * `BATCH.scan` rows; an alarm run handles at most one batch of each kind of
 * due timer and re-arms at once for the rest; a batch send is one
 * transaction, so a failure part-way stores nothing.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BATCH } from "../../src/broker/timers/timing.ts";
import { api, createTopic, shardStub, unique } from "./helpers.ts";
import {
  ageStored,
  ageMsgIds,
  countRows,
  passTimeForReceipts,
  passTimeForScheduled,
} from "./storage-sql.ts";

async function send(topic: string, messages: Record<string, unknown>[]) {
  const r = await api("POST", `/v1/topics/${topic}/messages?queue=0`, { messages });
  expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(200);
  return r.body.results as { msgId: string; offset: number | null; status: string }[];
}

/** Sends `n` small messages in batches of 1000 (the API's limit). */
async function backlog(
  topic: string,
  n: number,
  extra: Record<string, unknown> = {},
  prefix = "m",
) {
  for (let from = 0; from < n; from += 1000) {
    const count = Math.min(1000, n - from);
    await send(
      topic,
      Array.from({ length: count }, (_, i) => ({
        body: `${prefix}${from + i}`,
        tag: "Common",
        ...extra,
      })),
    );
  }
}

/** Runs SQL inside the shard (to make stored timers due without sleeping). */
function alarmAt(topic: string): Promise<number | null> {
  return runInDurableObject(shardStub(topic, 0), (_instance, state) => state.storage.getAlarm());
}

describe("bounded work", () => {
  it("answers a pull whose filter matches nothing in a backlog larger than one scan, having moved at most one scan", async () => {
    const topic = await createTopic({ queues: 1 });
    const total = BATCH.scan + 1500;
    await backlog(topic, total);

    const first = await api(
      "GET",
      `/v1/topics/${topic}/queues/0/messages?offset=0&max=32&filter=NeverSent`,
    );
    expect(first.status).toBe(200);
    expect(first.body.messages).toEqual([]);
    expect(first.body.maxOffset).toBe(total);
    expect(first.body.nextOffset).toBeGreaterThan(0);
    expect(first.body.nextOffset).toBeLessThanOrEqual(BATCH.scan);

    // Following nextOffset walks the whole backlog in bounded steps, skipping nothing silently.
    let offset = first.body.nextOffset as number;
    let steps = 1;
    while (offset < total && steps < 10) {
      const r = await api(
        "GET",
        `/v1/topics/${topic}/queues/0/messages?offset=${offset}&filter=NeverSent`,
      );
      expect(r.body.messages).toEqual([]);
      expect(r.body.nextOffset - offset).toBeLessThanOrEqual(BATCH.scan);
      expect(r.body.nextOffset).toBeGreaterThan(offset);
      offset = r.body.nextOffset;
      steps++;
    }
    expect(offset).toBe(total);
    expect(steps).toBeGreaterThanOrEqual(Math.ceil(total / BATCH.scan));

    // The same scan still finds a match past the first window.
    await send(topic, [{ body: "needle", tag: "NeverSent" }]);
    const found = await api(
      "GET",
      `/v1/topics/${topic}/queues/0/messages?offset=${offset}&filter=NeverSent`,
    );
    expect(found.body.messages.map((m: { body: string }) => m.body)).toEqual(["needle"]);
  });

  it("moves at most one batch of due scheduled messages per alarm run and re-arms at once for the rest", async () => {
    const topic = await createTopic({ queues: 1 });
    const total = BATCH.scheduled + 200;
    await backlog(topic, total, { delayMs: 60_000 });
    // Every timer due an hour ago, as after a long outage.
    await passTimeForScheduled(topic, 3_600_000);

    expect(await runDurableObjectAlarm(shardStub(topic, 0))).toBe(true);
    const afterOne = {
      logged: await countRows(topic, "log"),
      waiting: await countRows(topic, "scheduled"),
    };
    expect(afterOne).toEqual({ logged: BATCH.scheduled, waiting: total - BATCH.scheduled });
    const rearmed = await alarmAt(topic);
    expect(rearmed).not.toBeNull();
    expect(rearmed!).toBeLessThanOrEqual(Date.now());

    expect(await runDurableObjectAlarm(shardStub(topic, 0))).toBe(true);
    const afterTwo = {
      logged: await countRows(topic, "log"),
      waiting: await countRows(topic, "scheduled"),
    };
    expect(afterTwo).toEqual({ logged: total, waiting: 0 });
    // Offsets are dense over both runs.
    const tail = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=${total - 1}`);
    expect(tail.body).toMatchObject({ minOffset: 0, maxOffset: total });
  });

  it("lapses at most one batch of receipts per alarm run and re-arms at once for the rest", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    const total = BATCH.lapsed + 200;
    await backlog(topic, total);
    let received = 0;
    for (let i = 0; i < 5 && received < total; i++) {
      const r = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, {
        max: 1000,
        invisibleMs: 60_000,
      });
      expect(r.status).toBe(200);
      received += r.body.messages.length;
    }
    expect(received).toBe(total);
    // Every receipt's invisible time lapsed an hour ago.
    await passTimeForReceipts(topic, 3_600_000);

    expect(await runDurableObjectAlarm(shardStub(topic, 0))).toBe(true);
    const states = async () => ({
      inflight: await countRows(topic, "inflight", { popState: "inflight" }),
      retry: await countRows(topic, "inflight", { popState: "retry" }),
    });
    expect(await states()).toEqual({ inflight: total - BATCH.lapsed, retry: BATCH.lapsed });
    const rearmed = await alarmAt(topic);
    expect(rearmed).not.toBeNull();
    expect(rearmed!).toBeLessThanOrEqual(Date.now());

    expect(await runDurableObjectAlarm(shardStub(topic, 0))).toBe(true);
    expect(await states()).toEqual({ inflight: 0, retry: total });
  });

  it("forgets at most one batch of expired msgIds per retention sweep", async () => {
    const topic = await createTopic({ queues: 1, retentionMs: 60_000 });
    const total = BATCH.retention + 1000;
    await backlog(topic, total);
    // Every msgId past the dedup window, and a few messages past retention so the sweep runs.
    await ageMsgIds(topic, 2 * 86_400_000);
    await ageStored(topic, 2 * 86_400_000, { below: 10 });
    expect(await runDurableObjectAlarm(shardStub(topic, 0))).toBe(true);
    const left = { ids: await countRows(topic, "ids"), log: await countRows(topic, "log") };
    expect(left).toEqual({ ids: total - BATCH.retention, log: total - 10 });
  });

  it("stores a 1000-message batch in one transaction: all of it, or nothing when it fails part-way", async () => {
    const topic = await createTopic({
      queues: 1,
      maxBacklogMessages: 1500,
      overflowPolicy: "reject",
    });
    const ok = await send(
      topic,
      Array.from({ length: 1000 }, (_, i) => ({ body: `a${i}`, msgId: `${topic}-a${i}` })),
    );
    expect(ok.map((r) => r.offset)).toEqual(Array.from({ length: 1000 }, (_, i) => i));

    // The 501st message of this batch hits the bound: the first 500 must not stay either.
    const failed = await api("POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: Array.from({ length: 1000 }, (_, i) => ({
        body: `b${i}`,
        msgId: `${topic}-b${i}`,
      })),
    });
    expect(failed.status).toBe(507);
    expect(failed.body.error.code).toBe("QUEUE_FULL");
    const stats = (await api("GET", `/v1/topics/${topic}`)).body.queueStats[0];
    expect(stats).toMatchObject({ minOffset: 0, maxOffset: 1000, messages: 1000 });
    expect((await api("GET", `/v1/topics/${topic}/messages/${topic}-b0`)).status).toBe(404);
    const stored = { log: await countRows(topic, "log"), ids: await countRows(topic, "ids") };
    expect(stored).toEqual({ log: 1000, ids: 1000 });

    // The shard's in-memory counters were rolled back with it: the next send continues densely.
    const next = await send(topic, [{ body: "after", msgId: `${topic}-b0` }]);
    expect(next[0]).toMatchObject({ status: "stored", offset: 1000 });
  });
});
