/**
 * One bad row never stalls a shard's timers: each kind of timer work runs in
 * its own transaction, the rows of a batch fall back to one at a time when
 * the batch fails, and a row that keeps failing is set aside (kept in the
 * `parked` table, counted in queue stats) instead of being retried on every
 * alarm forever.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { PARK_AFTER_FAILURES } from "../../src/broker/store/parking.ts";
import { api, createTopic, shardStub, unique } from "./helpers.ts";
import {
  breakHalfMessages,
  breakScheduledRows,
  countRows,
  makeChecksDue,
  makeDue,
  parkedRows,
  passTimeForScheduled,
} from "./storage-sql.ts";

const send = (topic: string, messages: unknown[]) =>
  api("POST", `/v1/topics/${topic}/messages?queue=0`, { messages });
const stats = async (topic: string) => (await api("GET", `/v1/topics/${topic}`)).body.queueStats[0];

describe("timer work isolation", () => {
  it("lapses receipts and moves good scheduled messages while a bad scheduled row fails", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    expect((await send(topic, [{ body: "bad", delayMs: 60_000 }])).status).toBe(200);
    expect(await breakScheduledRows(topic)).toBe(1);
    expect((await send(topic, [{ body: "good", delayMs: 60_000 }, { body: "plain" }])).status).toBe(
      200,
    );
    const got = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 1 });
    expect(got.body.messages.map((m: { body: string }) => m.body)).toEqual(["plain"]);
    await makeDue(topic, 0, group);
    await passTimeForScheduled(topic, 120_000);
    expect(await runDurableObjectAlarm(shardStub(topic, 0))).toBe(true);
    // The lapse happened (a retry, visible at once), and the good scheduled message was moved.
    const again = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 5 });
    const bodies = again.body.messages.map((m: { body: string; reconsumeTimes: number }) => [
      m.body,
      m.reconsumeTimes,
    ]);
    expect(bodies).toEqual([
      ["plain", 1],
      ["good", 0],
    ]);
    // The bad row was put off for its next try, not dropped.
    expect(await countRows(topic, "scheduled")).toBe(1);
    expect(await countRows(topic, "scheduled", { dueBy: Date.now() })).toBe(0);
  });

  it("sets a scheduled row aside after it failed on its own in three runs, counting it", async () => {
    const topic = await createTopic({ queues: 1 });
    expect((await send(topic, [{ body: "bad", delayMs: 60_000 }])).status).toBe(200);
    await breakScheduledRows(topic);
    const stub = shardStub(topic, 0);
    for (let i = 0; i < PARK_AFTER_FAILURES; i++) {
      expect(await countRows(topic, "scheduled")).toBe(1);
      // Each failure puts the row off a while: time passes for it.
      await passTimeForScheduled(topic, 120_000);
      expect(await runDurableObjectAlarm(stub)).toBe(true);
    }
    expect(await countRows(topic, "scheduled")).toBe(0);
    const parked = await parkedRows(topic);
    expect(parked).toEqual([
      expect.objectContaining({
        kind: "scheduled",
        payload: "{not json",
        error: expect.any(String),
      }),
    ]);
    expect(await stats(topic)).toMatchObject({ parked: 1, scheduled: 0 });
    // Nothing is left to retry: the shard has no alarm for it any more.
    expect(await runDurableObjectAlarm(stub)).toBe(false);
    // Sends and scheduling go on.
    expect((await send(topic, [{ body: "after" }])).body.results[0].status).toBe("stored");
  });

  it("sets aside a half message whose check-back cannot be claimed, ending it rolled back", async () => {
    const topic = await createTopic({ queues: 1, maxBacklogMessages: 1, overflowPolicy: "reject" });
    const pg = unique("pg");
    expect(
      (await api("PUT", `/v1/producer-groups/${pg}`, { checkUrl: "http://127.0.0.1:9/check" }))
        .status,
    ).toBe(200);
    const half = await api("POST", `/v1/topics/${topic}/transactions`, {
      message: { body: "unreadable" },
      producerGroup: pg,
    });
    expect(half.status).toBe(200);
    await breakHalfMessages(topic);
    const stub = shardStub(topic, 0);
    for (let i = 0; i < PARK_AFTER_FAILURES; i++) {
      await makeChecksDue(topic);
      await runDurableObjectAlarm(stub);
    }
    const state = await api("GET", `/v1/transactions/${half.body.txId}`);
    expect(state.body.status).toBe("rolledBack");
    expect(state.body.endReason).toMatch(/^set aside: /);
    expect(await parkedRows(topic)).toEqual([
      expect.objectContaining({ kind: "half", payload: "{not json" }),
    ]);
    expect((await stats(topic)).parked).toBe(1);
    // Its room under the bound is free again.
    expect((await send(topic, [{ body: "fits" }])).status).toBe(200);
  });
});
