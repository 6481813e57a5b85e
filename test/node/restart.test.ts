/**
 * Restart semantics against the real local server (workerd, SQLite on disk):
 * what a stop + start on the same data directory keeps (scheduled messages,
 * receipts in flight, the timers behind them), and how long-polls behave
 * across a crash. Every wait is bounded by the long-poll's own `waitMs`.
 */
import { describe, expect, it } from "vitest";
import { call, serverFixture } from "./server-fixture.ts";

let n = 0;
const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(n++).toString(36)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const { start } = serverFixture("restart");

interface Received {
  msgId: string;
  body: string;
  receipt: string;
  reconsumeTimes: number;
}

async function receive(base: string, group: string, topic: string, opts: Record<string, unknown>) {
  const r = await call(base, "POST", `/v1/groups/${group}/topics/${topic}/receive`, opts);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.messages as Received[];
}

describe("a restart on the same data directory", () => {
  it("keeps scheduled messages and receipts in flight, and fires their timers after the restart", async () => {
    let server = await start();
    const topic = unique("t");
    const group = unique("g");
    expect((await call(server.url, "PUT", `/v1/topics/${topic}`, { queues: 2 })).status).toBe(200);
    const sent = await call(server.url, "POST", `/v1/topics/${topic}/messages`, {
      messages: [
        { body: "held-long", msgId: `${topic}-long` },
        { body: "held-short", msgId: `${topic}-short` },
        { body: "scheduled", msgId: `${topic}-sched`, delayMs: 4000 },
      ],
    });
    expect(sent.body.results.map((r: { status: string }) => r.status)).toEqual([
      "stored",
      "stored",
      "scheduled",
    ]);

    // Two receipts in flight: one that outlives the restart, one that lapses after it.
    const long = await receive(server.url, group, topic, {
      max: 1,
      invisibleMs: 120_000,
      filter: "*",
    });
    const first = long[0]!;
    const other = first.body === "held-long" ? "held-short" : "held-long";
    const short = await receive(server.url, group, topic, { max: 1, invisibleMs: 3000 });
    expect(short.map((m) => m.body)).toEqual([other]);

    expect(await server.stop("SIGTERM")).toBe(0);
    server = await start();

    // The long receipt is still good: acking it succeeds.
    const ack = await call(server.url, "POST", `/v1/groups/${group}/topics/${topic}/ack`, {
      receipts: [first.receipt],
    });
    expect(ack.body.results).toEqual([{ receipt: first.receipt, ok: true }]);

    // The short receipt lapses and the scheduled message comes due, both after
    // the restart: a long-poll is woken by the re-armed timers for each.
    const later: Received[] = [];
    for (let i = 0; i < 4 && later.length < 2; i++) {
      later.push(
        ...(await receive(server.url, group, topic, {
          max: 2,
          invisibleMs: 60_000,
          waitMs: 15_000,
        })),
      );
    }
    const byBody = Object.fromEntries(later.map((m) => [m.body, m]));
    expect(Object.keys(byBody).sort()).toEqual([other, "scheduled"].sort());
    expect(byBody[other]!.reconsumeTimes).toBe(1);
    expect(byBody.scheduled!.reconsumeTimes).toBe(0);
    await server.stop("SIGKILL");
  });

  it("delivers a scheduled message that came due while the server was down, found by a long-poll", async () => {
    let server = await start();
    const topic = unique("t");
    const group = unique("g");
    await call(server.url, "PUT", `/v1/topics/${topic}`, { queues: 2 });
    // A group that exists before the message is due starts at the earliest offset anyway.
    const sent = await call(server.url, "POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "due-while-down", delayMs: 1500 }],
    });
    expect(sent.body.results[0].status).toBe("scheduled");
    const dueAt = Date.now() + 1500;
    await server.stop("SIGKILL");
    // Down past the due time.
    await sleep(Math.max(0, dueAt - Date.now()) + 500);
    server = await start();

    const got = await receive(server.url, group, topic, { max: 4, waitMs: 15_000 });
    expect(got.map((m) => m.body)).toEqual(["due-while-down"]);
    await server.stop("SIGKILL");
  });

  it("fails a long-poll in flight cleanly when the server is killed, and the next long-poll works", async () => {
    let server = await start();
    const topic = unique("t");
    const group = unique("g");
    await call(server.url, "PUT", `/v1/topics/${topic}`, { queues: 2 });

    const t0 = Date.now();
    const inFlight = call(server.url, "POST", `/v1/groups/${group}/topics/${topic}/receive`, {
      waitMs: 20_000,
    }).then(
      (r) => ({ ok: true as const, r }),
      (e: unknown) => ({ ok: false as const, e }),
    );
    await sleep(500);
    await server.stop("SIGKILL");
    const outcome = await inFlight;
    // A network error, at once: not a hang until waitMs, and not a made-up answer.
    expect(outcome.ok).toBe(false);
    expect(Date.now() - t0).toBeLessThan(15_000);

    server = await start();
    // No waiter was left behind: a fresh long-poll waits and is woken by a send.
    const waiting = receive(server.url, group, topic, { max: 1, waitMs: 20_000 });
    await sleep(300);
    await call(server.url, "POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "after-crash" }],
    });
    const got = await waiting;
    expect(got.map((m) => m.body)).toEqual(["after-crash"]);
    // And a pull long-poll too.
    const end = (await call(server.url, "GET", `/v1/topics/${topic}`)).body.queueStats[0]
      .maxOffset as number;
    const pullWait = call(
      server.url,
      "GET",
      `/v1/topics/${topic}/queues/0/messages?offset=${end}&waitMs=20000`,
    );
    await sleep(300);
    await call(server.url, "POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [{ body: "pulled" }],
    });
    const pulled = await pullWait;
    expect(pulled.status).toBe(200);
    expect(pulled.body.messages.map((m: { body: string }) => m.body)).toEqual(["pulled"]);
    await server.stop("SIGKILL");
  });
});
