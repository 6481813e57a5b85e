/**
 * Recurring schedules in the runtime (the Scheduler Durable Object, its alarm
 * and its SQLite): time is moved by rewriting a schedule's pending fire
 * (`schedule.next_fire_at` / `due_at`) and the alarm is fired with
 * `runDurableObjectAlarm`, never by sleeping. Schedules use yearly or
 * minutely crons so no real alarm fires them during a test.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { SCHEDULER_MIGRATIONS } from "../../src/schedules/schema.ts";
import type { Scheduler } from "../../src/schedules/scheduler.ts";
import { schemaVersion } from "../../src/storage/migrations.ts";
import { api, createTopic, unique } from "./helpers.ts";
import { bearer, mint } from "./token-helpers.ts";

const scheduler = () => env.SCHEDULER.get(env.SCHEDULER.idFromName("schedules"));

/** Jan 1, 00:00 UTC, yearly: never due during a test unless moved. */
const YEARLY = "0 0 1 1 *";

const jan1 = (year: number) => Date.UTC(year, 0, 1);
const thisYear = () => new Date().getUTCFullYear();

async function put(name: string, body: Record<string, unknown>) {
  return api("PUT", `/v1/schedules/${name}`, body);
}

async function get(name: string) {
  return api("GET", `/v1/schedules/${name}`);
}

/** Makes the schedule's pending fire `at` (a fire time of its cron), due now. */
async function pendAt(name: string, at: number): Promise<void> {
  await runInDurableObject(scheduler(), (_: Scheduler, state) => {
    state.storage.sql.exec(
      "UPDATE schedule SET next_fire_at = ?, due_at = ? WHERE name = ?",
      at,
      at,
      name,
    );
  });
}

async function row(name: string) {
  return runInDurableObject(
    scheduler(),
    (_: Scheduler, state) =>
      state.storage.sql
        .exec<{
          next_fire_at: number | null;
          due_at: number | null;
          failures: number;
        }>("SELECT next_fire_at, due_at, failures FROM schedule WHERE name = ?", name)
        .toArray()[0],
  );
}

async function alarm(): Promise<void> {
  await runDurableObjectAlarm(scheduler());
}

/** Every message of a topic (all queues), by store time. */
async function messages(topic: string) {
  const r = await api("GET", `/v1/topics/${topic}/messages?from=0&to=${Date.now() + 60_000}`);
  expect(r.status).toBe(200);
  return r.body.messages as { msgId: string; body: string; bornAt: number; tag?: string }[];
}

async function scheduleOn(topic: string, cron = YEARLY, extra: Record<string, unknown> = {}) {
  const name = unique("s");
  const r = await put(name, { topic, cron, message: { body: `from ${name}` }, ...extra });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return name;
}

describe("schedule config", () => {
  it("answers the config with its next fire, and lists it", async () => {
    const topic = await createTopic({ queues: 2 });
    const name = unique("s");
    const r = await put(name, {
      topic,
      cron: "0 9 * * *",
      timezone: "America/New_York",
      message: { body: "report", tag: "daily", properties: { kind: "report" } },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      schedule: name,
      topic,
      cron: "0 9 * * *",
      timezone: "America/New_York",
      message: { body: "report", tag: "daily", properties: { kind: "report" } },
      paused: false,
      lastFireAt: null,
      fires: 0,
      errors: 0,
      lastError: null,
    });
    // 9:00 in New York: 13:00Z or 14:00Z depending on daylight saving, within a day.
    const next = r.body.nextFireAt as number;
    expect([13, 14]).toContain(new Date(next).getUTCHours());
    expect(next).toBeGreaterThan(Date.now());
    expect(next - Date.now()).toBeLessThanOrEqual(25 * 3_600_000);
    expect((await get(name)).body).toEqual(r.body);
    const listed = await api("GET", "/v1/schedules?limit=1000");
    expect(listed.body.schedules.map((s: { schedule: string }) => s.schedule)).toContain(name);
  });

  it("arms the scheduler's alarm at the earliest due schedule", async () => {
    const topic = await createTopic({ queues: 1 });
    const name = await scheduleOn(topic, "* * * * * *");
    const { nextFireAt } = (await get(name)).body;
    const armed = await runInDurableObject(scheduler(), (_: Scheduler, s) => s.storage.getAlarm());
    expect(armed).not.toBeNull();
    expect(armed!).toBeLessThanOrEqual(nextFireAt);
    expect((await api("DELETE", `/v1/schedules/${name}`)).status).toBe(200);
  });

  it("pages the list by name with limit and after", async () => {
    const topic = await createTopic({ queues: 1 });
    const prefix = unique("page");
    for (const k of ["a", "b", "c"])
      await put(`${prefix}-${k}`, { topic, cron: YEARLY, message: { body: k } });
    const first = await api("GET", `/v1/schedules?limit=2&after=${prefix}`);
    expect(first.body.schedules.map((s: { schedule: string }) => s.schedule)).toEqual([
      `${prefix}-a`,
      `${prefix}-b`,
    ]);
    expect(first.body.next).toBe(`${prefix}-b`);
    const second = await api("GET", `/v1/schedules?limit=2&after=${first.body.next}`);
    expect(second.body.schedules[0].schedule).toBe(`${prefix}-c`);
  });

  it("pauses (no next fire, nothing due) and resumes from now", async () => {
    const topic = await createTopic({ queues: 1 });
    const name = await scheduleOn(topic);
    const paused = await put(name, { paused: true });
    expect(paused.body).toMatchObject({ paused: true, nextFireAt: null, topic });
    expect(await row(name)).toMatchObject({ next_fire_at: null, due_at: null });
    await alarm();
    expect(await messages(topic)).toEqual([]);
    const resumed = await put(name, { paused: false });
    expect(resumed.body.nextFireAt).toBe(jan1(thisYear() + 1));
  });

  it("is admin only", async () => {
    const topic = await createTopic({ queues: 1 });
    const token = await mint({ publish: [topic], subscribe: [topic], groups: ["*"] });
    const body = { topic, cron: YEARLY, message: { body: "x" } };
    const name = unique("s");
    for (const [method, path, b] of [
      ["PUT", `/v1/schedules/${name}`, body],
      ["GET", "/v1/schedules", undefined],
      ["GET", `/v1/schedules/${name}`, undefined],
      ["DELETE", `/v1/schedules/${name}`, undefined],
      ["POST", `/v1/schedules/${name}/run`, undefined],
    ] as const) {
      const r = await api(method, path, b, bearer(token));
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.error.code).toBe("FORBIDDEN");
    }
    expect((await get(name)).status).toBe(404);
  });

  it("opens the scheduler's database at the latest schema version", async () => {
    await runInDurableObject(scheduler(), (_: Scheduler, state) => {
      expect(schemaVersion(state.storage.sql)).toBe(SCHEDULER_MIGRATIONS.length);
    });
  });
});

describe("bad input stores nothing", () => {
  it("refuses a topic that does not exist with 400 naming topic", async () => {
    const name = unique("s");
    const r = await put(name, { topic: unique("missing"), cron: YEARLY, message: { body: "x" } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("BAD_REQUEST");
    expect(r.body.error.message).toMatch(/^topic .* does not exist/);
    expect((await get(name)).status).toBe(404);
  });

  it("refuses a bad cron or time zone with 400 naming the field, leaving the schedule as it was", async () => {
    const topic = await createTopic({ queues: 1 });
    const name = await scheduleOn(topic);
    const before = (await get(name)).body;
    for (const [body, field] of [
      [{ cron: "99 * * * *" }, "cron"],
      [{ cron: "* * *" }, "cron"],
      [{ timezone: "Nowhere/Special" }, "timezone"],
      [{ cron: 5 }, "cron"],
    ] as const) {
      const r = await put(name, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
      expect(r.body.error.message.startsWith(field)).toBe(true);
    }
    expect((await get(name)).body).toEqual(before);
  });

  it("refuses a message the topic refuses with the send's code", async () => {
    const topic = await createTopic({ queues: 1, maxMessageBytes: 8 });
    const name = unique("s");
    const r = await put(name, { topic, cron: YEARLY, message: { body: "longer than eight" } });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("MESSAGE_TOO_LARGE");
    expect(r.body.error.message).toMatch(/^message: /);
    const bad = await put(name, { topic, cron: YEARLY, message: { body: "x", encoding: "hex" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toBe("message: encoding must be utf8 or base64");
    expect((await get(name)).status).toBe(404);
  });

  it("refuses a missing field of a new schedule, a bad name and malformed JSON", async () => {
    const topic = await createTopic({ queues: 1 });
    const name = unique("s");
    const r = await put(name, { topic, message: { body: "x" } });
    expect(r.body.error).toMatchObject({
      code: "BAD_REQUEST",
      message: "cron is required for a new schedule",
    });
    expect((await api("PUT", `/v1/schedules/${"x".repeat(101)}`, { topic })).body.error.code).toBe(
      "INVALID_NAME",
    );
    expect((await api("PUT", `/v1/schedules/${name}`, "{not json")).status).toBe(400);
    expect((await get(name)).status).toBe(404);
  });
});

describe("fires (alarm)", () => {
  it("sends one message for a due fire, msgId {name}:{fireTimeMs}, and goes on to the next", async () => {
    const topic = await createTopic({ queues: 2 });
    const name = await scheduleOn(topic, YEARLY, {
      message: { body: "happy new year", tag: "ny" },
    });
    const fireAt = jan1(thisYear());
    await pendAt(name, fireAt);
    await alarm();
    const got = await messages(topic);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({
      msgId: `${name}:${fireAt}`,
      body: "happy new year",
      tag: "ny",
      bornAt: fireAt,
    });
    expect((await get(name)).body).toMatchObject({
      lastFireAt: fireAt,
      lastMsgId: `${name}:${fireAt}`,
      lastStatus: "stored",
      fires: 1,
      missedFires: 0,
      nextFireAt: jan1(thisYear() + 1),
    });
  });

  it("stores a fire retried after a crash once: the same fire time, the same msgId, a duplicate", async () => {
    const topic = await createTopic({ queues: 2 });
    const name = await scheduleOn(topic);
    const fireAt = jan1(thisYear());
    await pendAt(name, fireAt);
    await alarm();
    // As if the object died after the send and before recording it: the same fire is pending again.
    await pendAt(name, fireAt);
    await alarm();
    expect((await messages(topic)).map((m) => m.msgId)).toEqual([`${name}:${fireAt}`]);
    expect((await get(name)).body).toMatchObject({ lastStatus: "duplicate", fires: 2 });
  });

  it("sends a fire missed during downtime once, for the latest time due, then goes on from now", async () => {
    const topic = await createTopic({ queues: 2 });
    const name = await scheduleOn(topic, "* * * * *");
    const minute = 60_000;
    const pending = Math.floor(Date.now() / minute) * minute - 10 * minute;
    await pendAt(name, pending);
    await alarm();
    const after = Date.now();
    const got = await messages(topic);
    expect(got).toHaveLength(1);
    const fireAt = Number(got[0]!.msgId.slice(name.length + 1));
    expect(got[0]!.msgId).toBe(`${name}:${fireAt}`);
    expect(fireAt % minute).toBe(0);
    expect(fireAt).toBeGreaterThanOrEqual(pending + 10 * minute);
    expect(fireAt).toBeLessThanOrEqual(after);
    const info = (await get(name)).body;
    expect(info.missedFires).toBe((fireAt - pending) / minute);
    expect(info.nextFireAt).toBe(fireAt + minute);
    expect(info.nextFireAt).toBeGreaterThan(after - minute);
    await api("DELETE", `/v1/schedules/${name}`);
  });

  it("sends fires due together to one topic in one go; a message the topic refuses spoils no other", async () => {
    const topic = await createTopic({ queues: 2 });
    const small = await scheduleOn(topic, YEARLY, { message: { body: "ok" } });
    const large = await scheduleOn(topic, YEARLY, { message: { body: "x".repeat(64) } });
    const other = await scheduleOn(topic, YEARLY, { message: { body: "ok too" } });
    // The topic now refuses the large one's message.
    expect((await api("PUT", `/v1/topics/${topic}`, { maxMessageBytes: 16 })).status).toBe(200);
    const fireAt = jan1(thisYear());
    for (const name of [small, large, other]) await pendAt(name, fireAt);
    await alarm();
    expect((await messages(topic)).map((m) => m.msgId).sort()).toEqual(
      [`${small}:${fireAt}`, `${other}:${fireAt}`].sort(),
    );
    const refused = (await get(large)).body;
    expect(refused).toMatchObject({ fires: 0, errors: 1, nextFireAt: jan1(thisYear() + 1) });
    expect(refused.lastError).toMatch(/^MESSAGE_TOO_LARGE: /);
    expect((await get(small)).body).toMatchObject({ fires: 1, lastStatus: "stored" });
  });

  it("gives up a fire whose topic is gone, records why, and goes on", async () => {
    const topic = await createTopic({ queues: 1 });
    const name = await scheduleOn(topic);
    expect((await api("DELETE", `/v1/topics/${topic}`)).status).toBe(200);
    await pendAt(name, jan1(thisYear()));
    await alarm();
    const info = (await get(name)).body;
    expect(info).toMatchObject({ fires: 0, errors: 1, nextFireAt: jan1(thisYear() + 1) });
    expect(info.lastError).toMatch(/^TOPIC_NOT_FOUND: /);
    expect(info.lastErrorAt).toBeGreaterThan(0);
  });

  it("retries a fire refused by a full queue with backoff, then sends it for the same fire time", async () => {
    const topic = await createTopic({ queues: 1, maxBacklogMessages: 1, overflowPolicy: "reject" });
    await api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "filler" }] });
    const name = await scheduleOn(topic);
    const fireAt = jan1(thisYear());
    await pendAt(name, fireAt);
    const t0 = Date.now();
    await alarm();
    const failed = await row(name);
    expect(failed!.next_fire_at).toBe(fireAt);
    expect(failed!.failures).toBe(1);
    expect(failed!.due_at!).toBeGreaterThanOrEqual(t0 + 1000);
    expect(failed!.due_at!).toBeLessThanOrEqual(Date.now() + 1000);
    expect((await get(name)).body.lastError).toMatch(/^QUEUE_FULL: /);
    // Room again; the retry comes due.
    await api("POST", `/v1/topics/${topic}/purge`);
    await pendAt(name, fireAt);
    await alarm();
    expect((await messages(topic)).map((m) => m.msgId)).toEqual([`${name}:${fireAt}`]);
    expect((await get(name)).body).toMatchObject({ fires: 1, errors: 1, lastStatus: "stored" });
    expect((await row(name))!.failures).toBe(0);
  });

  it("fires nothing for a schedule deleted before its time", async () => {
    const topic = await createTopic({ queues: 1 });
    const name = await scheduleOn(topic);
    await pendAt(name, jan1(thisYear()));
    expect((await api("DELETE", `/v1/schedules/${name}`)).body).toEqual({
      schedule: name,
      deleted: true,
    });
    await alarm().catch(() => {});
    expect(await messages(topic)).toEqual([]);
    expect((await get(name)).status).toBe(404);
    expect((await api("DELETE", `/v1/schedules/${name}`)).body.error.code).toBe("NOT_FOUND");
    expect((await api("POST", `/v1/schedules/${name}/run`)).body.error.code).toBe("NOT_FOUND");
  });
});

describe("run now", () => {
  it("sends one message now with msgId {name}:run:{nowMs}, leaving the next fire as it was", async () => {
    const topic = await createTopic({ queues: 2 });
    const name = await scheduleOn(topic, YEARLY, { paused: true });
    const t0 = Date.now();
    const r = await api("POST", `/v1/schedules/${name}/run`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ schedule: name, status: "stored" });
    const at = Number(r.body.msgId.slice(`${name}:run:`.length));
    expect(r.body.msgId).toBe(`${name}:run:${at}`);
    expect(at).toBeGreaterThanOrEqual(t0);
    const got = await messages(topic);
    expect(got.map((m) => m.msgId)).toEqual([r.body.msgId]);
    expect(got[0]!.bornAt).toBe(at);
    expect((await get(name)).body).toMatchObject({
      paused: true,
      nextFireAt: null,
      lastFireAt: at,
      lastMsgId: r.body.msgId,
      fires: 1,
    });
  });

  it("answers the send's error when the topic is gone, and records it", async () => {
    const topic = await createTopic({ queues: 1 });
    const name = await scheduleOn(topic);
    await api("DELETE", `/v1/topics/${topic}`);
    const r = await api("POST", `/v1/schedules/${name}/run`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("TOPIC_NOT_FOUND");
    expect((await get(name)).body).toMatchObject({ errors: 1, fires: 0 });
  });
});
