/**
 * Invariant 6: a half message is never visible until committed; a rolled-back
 * one never. Check-back is driven here by the alarm helpers with `fetch`
 * stubbed (the Worker runs in the test's isolate); test/node/transactions-http
 * runs it against a real HTTP server.
 */
import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { verifySignature } from "../../src/protocol/signing.ts";
import { CHECK_TIMEOUT_MS } from "../../src/broker/timers/timing.ts";
import { parseTxId } from "../../src/protocol/ids.ts";
import { api, createTopic, shardStub, unique } from "./helpers.ts";
import { forgetHalfMessages, makeChecksDue } from "./storage-sql.ts";

async function prepare(
  topic: string,
  message: Record<string, unknown>,
  producerGroup = "pg-default",
) {
  const r = await api("POST", `/v1/topics/${topic}/transactions`, { message, producerGroup });
  expect(r.status).toBe(200);
  return r.body as { txId: string; msgId: string };
}

async function end(txId: string, how: "commit" | "rollback") {
  return api("POST", `/v1/transactions/${encodeURIComponent(txId)}/${how}`);
}

async function visible(topic: string, queue: number) {
  const r = await api("GET", `/v1/topics/${topic}/queues/${queue}/messages?offset=0&max=1000`);
  expect(r.status).toBe(200);
  return r.body.messages as { body: string; msgId: string; offset: number }[];
}

async function received(topic: string) {
  const r = await api("POST", `/v1/groups/${unique("g")}/topics/${topic}/receive`, {
    max: 100,
    waitMs: 0,
  });
  expect(r.status).toBe(200);
  return r.body.messages as { body: string }[];
}

async function txState(txId: string) {
  const r = await api("GET", `/v1/transactions/${encodeURIComponent(txId)}`);
  expect(r.status).toBe(200);
  return r.body as {
    status: string;
    checks: number;
    endReason: string | null;
    offset: number | null;
  };
}

/** Makes every open half message of the shard due for its check-back. */
async function checkDueNow(topic: string, queue: number) {
  await makeChecksDue(topic, queue);
}

/** Polls a transaction until its status is not `open` or `ms` passed. */
async function settled(txId: string, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await txState(txId);
    if (s.status !== "open" || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 20));
  }
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("transactions", () => {
  it("keeps a half message invisible to pull, receive and stats", async () => {
    const topic = await createTopic({ queues: 1 });
    const { txId, msgId } = await prepare(topic, { body: "half", msgId: "h-1" });
    expect(msgId).toBe("h-1");
    expect(parseTxId(txId)).toMatchObject({ topic, queue: 0 });
    expect(await visible(topic, 0)).toEqual([]);
    expect(await received(topic)).toEqual([]);
    const stats = (await api("GET", `/v1/topics/${topic}`)).body.queueStats[0];
    expect(stats).toMatchObject({ messages: 0, maxOffset: 0 });
    // Time passing without a check URL does not reveal it either.
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect(await visible(topic, 0)).toEqual([]);
    expect((await txState(txId)).status).toBe("open");
  });

  it("commits a half message visible once, with an offset, however often commit is repeated", async () => {
    const topic = await createTopic({ queues: 4 });
    const { txId, msgId } = await prepare(topic, { body: "paid", keys: ["order-9"] });
    const { queue } = parseTxId(txId);
    for (let i = 0; i < 3; i++) {
      const r = await end(txId, "commit");
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ status: "committed" });
    }
    const msgs = await visible(topic, queue);
    expect(msgs.map((m) => [m.body, m.msgId, m.offset])).toEqual([["paid", msgId, 0]]);
    expect((await received(topic)).map((m) => m.body)).toEqual(["paid"]);
    expect(await txState(txId)).toMatchObject({
      status: "committed",
      offset: 0,
      endReason: "producer commit",
    });
    const late = await end(txId, "rollback");
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe("TRANSACTION_ENDED");
    expect(await visible(topic, queue)).toHaveLength(1);
  });

  it("never delivers a rolled-back half message", async () => {
    const topic = await createTopic({ queues: 1 });
    const { txId } = await prepare(topic, { body: "cancelled" });
    expect((await end(txId, "rollback")).body).toEqual({ status: "rolledBack" });
    expect((await end(txId, "rollback")).status).toBe(200);
    const late = await end(txId, "commit");
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe("TRANSACTION_ENDED");
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect(await visible(topic, 0)).toEqual([]);
    expect(await received(topic)).toEqual([]);
    expect(await txState(txId)).toMatchObject({ status: "rolledBack", offset: null });
  });

  it("answers 404 TRANSACTION_NOT_FOUND for unknown and malformed txIds", async () => {
    const topic = await createTopic({ queues: 2 });
    const { txId } = await prepare(topic, { body: "x" });
    const { queue, id } = parseTxId(txId);
    for (const bad of [
      "garbage",
      "t1..0.1",
      `t1.${topic}.${queue}.${id + 12345}`,
      `t1.${topic}.7.${id}`,
      `t1.${unique("no-such-topic")}.0.1`,
      `t2.${topic}.${queue}.${id}`,
    ]) {
      for (const how of ["commit", "rollback"] as const) {
        const r = await end(bad, how);
        expect([bad, r.status, r.body.error.code]).toEqual([bad, 404, "TRANSACTION_NOT_FOUND"]);
      }
      const r = await api("GET", `/v1/transactions/${encodeURIComponent(bad)}`);
      expect(r.status).toBe(404);
    }
    // Nothing was ended by the attempts.
    expect((await txState(txId)).status).toBe("open");
  });

  it("rejects bad prepare input and stores nothing", async () => {
    const topic = await createTopic({ queues: 1 });
    const cases: [unknown, number, string][] = [
      [{ message: { body: "x" } }, 400, "INVALID_NAME"],
      [{ message: { body: "x" }, producerGroup: "bad name" }, 400, "INVALID_NAME"],
      [{ producerGroup: "pg" }, 400, "BAD_REQUEST"],
      [{ message: { body: 5 }, producerGroup: "pg" }, 400, "BAD_REQUEST"],
      [{ message: { body: "x", delayMs: 1000 }, producerGroup: "pg" }, 400, "BAD_REQUEST"],
      [[], 400, "BAD_REQUEST"],
    ];
    for (const [body, status, code] of cases) {
      const r = await api("POST", `/v1/topics/${topic}/transactions`, body);
      expect([JSON.stringify(body), r.status, r.body.error?.code]).toEqual([
        JSON.stringify(body),
        status,
        code,
      ]);
    }
    const missing = await api("POST", `/v1/topics/${unique("nope")}/transactions`, {
      message: { body: "x" },
      producerGroup: "pg",
    });
    expect(missing.status).toBe(404);
    const open = await api("GET", `/v1/topics/${topic}/transactions`);
    expect(open.body.transactions).toEqual([]);
  });

  it("lists open transactions with their age and check count", async () => {
    const topic = await createTopic({ queues: 2 });
    const a = await prepare(topic, { body: "a" });
    const b = await prepare(topic, { body: "b" });
    const c = await prepare(topic, { body: "c" });
    await end(b.txId, "commit");
    const r = await api("GET", `/v1/topics/${topic}/transactions`);
    expect(r.status).toBe(200);
    const list = r.body.transactions as {
      txId: string;
      msgId: string;
      ageMs: number;
      checks: number;
    }[];
    expect(list.map((t) => t.txId)).toEqual([a.txId, c.txId]);
    for (const t of list) {
      expect(t.ageMs).toBeGreaterThanOrEqual(0);
      expect(t.checks).toBe(0);
      expect(t).toHaveProperty("producerGroup", "pg-default");
    }
  });

  it("never reuses a txId, even after ended transactions are swept", async () => {
    const topic = await createTopic({ queues: 1 });
    const old = await prepare(topic, { body: "old" });
    await end(old.txId, "rollback");
    await forgetHalfMessages(topic);
    const fresh = await prepare(topic, { body: "new" });
    expect(fresh.txId).not.toBe(old.txId);
    expect((await end(old.txId, "commit")).status).toBe(404);
    expect(await visible(topic, 0)).toEqual([]);
  });

  it("commits an open half message after the broker restarts", async () => {
    const topic = await createTopic({ queues: 1 });
    const stub = shardStub(topic, 0);
    const { txId } = await prepare(topic, { body: "survives" });
    await evictDurableObject(stub);
    expect(await visible(topic, 0)).toEqual([]);
    expect((await end(txId, "commit")).body).toEqual({ status: "committed" });
    expect((await visible(topic, 0)).map((m) => m.body)).toEqual(["survives"]);
  });
});

describe("check-back (fetch stubbed)", () => {
  /** Producer group whose check URL is answered by `answer`; records every call. */
  async function checkedGroup(
    answer: (body: any) => Response | Promise<Response>,
    extra: object = {},
  ) {
    const pg = unique("pg");
    const url = `https://${pg}.example.test/check`;
    const r = await api("PUT", `/v1/producer-groups/${pg}`, {
      checkUrl: url,
      checkAfterMs: 60_000,
      checkIntervalMs: 60_000,
      maxChecks: 3,
      ...extra,
    });
    expect(r.status).toBe(200);
    const secret = r.body.signingSecret as string;
    const calls: { body: any; raw: string; headers: Headers }[] = [];
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const req = new Request(input as RequestInfo, init);
      if (!req.url.startsWith(url)) return realFetch(input as RequestInfo, init);
      const raw = await req.text();
      const body = JSON.parse(raw);
      calls.push({ body, raw, headers: req.headers });
      return answer(body);
    });
    return { pg, calls, secret };
  }

  const json = (v: unknown) =>
    new Response(JSON.stringify(v), { headers: { "content-type": "application/json" } });

  it("asks the producer group after checkAfterMs with a signed body, and commits on its word", async () => {
    const topic = await createTopic({ queues: 1 });
    const { pg, calls, secret } = await checkedGroup(() => json({ status: "commit" }));
    const { txId, msgId } = await prepare(
      topic,
      { body: "checked", tag: "T", properties: { a: "1" } },
      pg,
    );
    // Not due yet: the alarm asks nothing.
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect(calls).toHaveLength(0);
    await checkDueNow(topic, 0);
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect(await settled(txId)).toMatchObject({
      status: "committed",
      checks: 1,
      endReason: "check-back commit",
    });
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    expect(call.body).toMatchObject({
      txId,
      msgId,
      topic,
      checkTimes: 1,
      message: { body: "checked", tag: "T", properties: { a: "1" }, msgId },
    });
    // Signed with the producer group's own secret, over a timestamp of now.
    expect(await verifySignature(call.headers, call.raw, { secrets: [secret] })).toEqual({
      ok: true,
    });
    expect(await verifySignature(call.headers, call.raw, { secrets: ["test-secret"] })).toEqual({
      ok: false,
      reason: "mismatch",
    });
    expect((await visible(topic, 0)).map((m) => m.body)).toEqual(["checked"]);
  });

  it("rolls back on the producer's rollback answer", async () => {
    const topic = await createTopic({ queues: 1 });
    const { pg } = await checkedGroup(() => json({ status: "rollback" }));
    const { txId } = await prepare(topic, { body: "no" }, pg);
    await checkDueNow(topic, 0);
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect(await settled(txId)).toMatchObject({
      status: "rolledBack",
      endReason: "check-back rollback",
    });
    expect(await visible(topic, 0)).toEqual([]);
  });

  for (const [what, answer] of [
    ["unknown", () => json({ status: "unknown" })],
    ["garbage", () => new Response("<html>not json</html>")],
    ["an odd status", () => json({ status: "COMMIT" })],
    ["an error status", () => new Response("down", { status: 503 })],
    ["a thrown error", () => Promise.reject(new TypeError("network down"))],
  ] as const) {
    it(`defers on ${what}, then rolls back after maxChecks and records why`, async () => {
      const topic = await createTopic({ queues: 1 });
      const { pg, calls } = await checkedGroup(answer);
      const { txId } = await prepare(topic, { body: "undecided" }, pg);
      for (let i = 1; i <= 2; i++) {
        await checkDueNow(topic, 0);
        await runDurableObjectAlarm(shardStub(topic, 0));
        const deadline = Date.now() + 5000;
        while ((await txState(txId)).checks < i && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
        // Let the check's answer be handled before looking.
        await new Promise((r) => setTimeout(r, 50));
        expect(await txState(txId)).toMatchObject({ status: "open", checks: i });
        expect(await visible(topic, 0)).toEqual([]);
      }
      const listed = (await api("GET", `/v1/topics/${topic}/transactions`)).body.transactions;
      expect(listed).toMatchObject([{ txId, checks: 2 }]);
      await checkDueNow(topic, 0);
      await runDurableObjectAlarm(shardStub(topic, 0));
      expect(await settled(txId)).toMatchObject({
        status: "rolledBack",
        checks: 3,
        endReason: "check-back limit reached",
      });
      expect(calls.map((c) => c.body.checkTimes)).toEqual([1, 2, 3]);
      expect(await visible(topic, 0)).toEqual([]);
      expect((await api("GET", `/v1/topics/${topic}/transactions`)).body.transactions).toEqual([]);
    });
  }

  it("lets the producer's own end stand over a later check answer", async () => {
    const topic = await createTopic({ queues: 1 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { pg, calls } = await checkedGroup(
      async () => {
        await gate;
        return json({ status: "commit" });
      },
      { checkIntervalMs: 1000 },
    );
    const { txId } = await prepare(topic, { body: "raced" }, pg);
    await checkDueNow(topic, 0);
    const claimedAt = Date.now();
    await runDurableObjectAlarm(shardStub(topic, 0));
    await expect.poll(() => calls.length).toBe(1);
    // The hanging check holds the half message past its timeout, even with a shorter interval.
    const held = (await api("GET", `/v1/transactions/${encodeURIComponent(txId)}`)).body
      .nextCheckAt;
    expect(held).toBeGreaterThan(claimedAt + CHECK_TIMEOUT_MS);
    // While the check hangs, sends and the producer's rollback go through.
    const sent = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "meanwhile" }],
    });
    expect(sent.status).toBe(200);
    expect((await end(txId, "rollback")).status).toBe(200);
    expect(calls).toHaveLength(1);
    release();
    await new Promise((r) => setTimeout(r, 100));
    expect(await txState(txId)).toMatchObject({
      status: "rolledBack",
      endReason: "producer rollback",
    });
    expect((await visible(topic, 0)).map((m) => m.body)).toEqual(["meanwhile"]);
  });

  it("drops a check answer that arrives after its topic was deleted", async () => {
    const topic = await createTopic({ queues: 1 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { pg, calls } = await checkedGroup(async () => {
      await gate;
      return json({ status: "commit" });
    });
    const { txId } = await prepare(topic, { body: "orphan" }, pg);
    await checkDueNow(topic, 0);
    await runDurableObjectAlarm(shardStub(topic, 0));
    // The check reads the producer group's secrets from the registry before it is sent.
    await expect.poll(() => calls.length).toBe(1);
    expect((await api("DELETE", `/v1/topics/${topic}`)).status).toBe(200);
    release();
    await new Promise((r) => setTimeout(r, 100));
    const r = await api("GET", `/v1/transactions/${encodeURIComponent(txId)}`);
    expect([r.status, r.body.error.code]).toEqual([404, "TRANSACTION_NOT_FOUND"]);
    const again = await api("PUT", `/v1/topics/${topic}`, { queues: 1 });
    expect(again.status).toBe(200);
    expect(await visible(topic, 0)).toEqual([]);
    expect((await end(txId, "commit")).status).toBe(404);
  });

  it("does not check a producer group without a check URL", async () => {
    const topic = await createTopic({ queues: 1 });
    const pg = unique("pg");
    await api("PUT", `/v1/producer-groups/${pg}`, { checkAfterMs: 0 });
    const spy = vi.spyOn(globalThis, "fetch");
    const { txId } = await prepare(topic, { body: "nobody-asks" }, pg);
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect(spy).not.toHaveBeenCalled();
    expect(await txState(txId)).toMatchObject({ status: "open", checks: 0 });
    expect(await visible(topic, 0)).toEqual([]);
  });
});
