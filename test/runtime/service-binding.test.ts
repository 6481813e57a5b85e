/**
 * Edge code on the same account: a second Worker (test/fixtures/binding-worker)
 * uses the SDK over a Service Binding to the broker's `EdgemqRpc` entrypoint,
 * with no token, and the broker sees exactly what it would over HTTP.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";

const worker = env.BINDING_WORKER;

/** The binding's `request(method, path, body)`, called in the second Worker. */
async function raw(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const r = await worker.raw(method, path, body === undefined ? undefined : JSON.stringify(body));
  return { status: r.status, body: r.json ? JSON.parse(r.json) : undefined };
}

describe("the SDK in another Worker, over a Service Binding", () => {
  it("sends, receives and acks with no token", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    const bodies = ["a", "b", "c", "d", "e"];
    const results = await worker.produce(
      bodies.map((body, i) => ({ topic, body, msgId: `sb-${topic}-${i}` })),
      [{ topic, body: "f", msgId: `sb-${topic}-5` }],
    );
    expect(results.map((r) => r.status)).toEqual(Array(6).fill("stored"));

    const consumed = await worker.consume(group, topic, 6);
    expect(consumed.map((m) => m.body).sort()).toEqual([...bodies, "f"]);
    expect(new Set(consumed.map((m) => m.msgId)).size).toBe(6);

    // Acked at the broker: nothing left for the group. (Over a session an ack
    // of a pushed receipt is written within LAZY_MS of its answer.)
    let g = await api("GET", `/v1/groups/${group}`);
    for (let i = 0; i < 50 && g.body.topics[topic].some((q: any) => q.inflight > 0); i++) {
      await new Promise((r) => setTimeout(r, 10));
      g = await api("GET", `/v1/groups/${group}`);
    }
    expect(g.status).toBe(200);
    for (const q of g.body.topics[topic]) expect(q).toMatchObject({ lag: 0, inflight: 0 });
  });

  it("resends with the same msgId as a duplicate, stored once", async () => {
    const topic = await createTopic({ queues: 1 });
    const m = { topic, body: "once", msgId: unique("m") };
    expect((await worker.produce([m]))[0]).toMatchObject({ status: "stored", offset: 0 });
    expect((await worker.produce([m]))[0]).toMatchObject({ status: "duplicate", offset: 0 });
    const t = await api("GET", `/v1/topics/${topic}`);
    expect(t.body.queueStats[0].maxOffset).toBe(1);
  });

  it("keeps per-key order and pulls by offset through the query string", async () => {
    const topic = await createTopic({ queues: 3 });
    const messages = Array.from({ length: 7 }, (_, i) => ({
      topic,
      body: `k-${i}`,
      shardingKey: "user-1",
    }));
    const results = await worker.produce(messages);
    const queues = new Set(results.map((r) => ("queue" in r ? r.queue : null)));
    expect(queues.size).toBe(1);

    // max 2 per pull: the consumer must move `offset=` along to see all 7.
    const pulled = await worker.pullAll(unique("b"), topic, 7);
    expect(pulled.map((m) => m.body)).toEqual(messages.map((m) => m.body));
    expect(pulled.map((m) => m.offset)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it("creates topics with Admin over the binding (a binding is an admin grant)", async () => {
    const topic = unique("adm");
    expect(await worker.createTopic(topic, 4)).toBe(4);
    expect((await api("GET", `/v1/topics/${topic}/route`)).body).toEqual({ topic, queues: 4 });
  });

  it("turns the broker's refusals into the contract's error codes", async () => {
    expect(await worker.sendFailure({ topic: unique("missing"), body: "x" })).toMatchObject({
      name: "EdgemqError",
      code: "TOPIC_NOT_FOUND",
      httpStatus: 404,
    });
    const topic = await createTopic({ queues: 1, maxMessageBytes: 16 });
    expect(await worker.sendFailure({ topic, body: "x".repeat(17) })).toMatchObject({
      code: "MESSAGE_TOO_LARGE",
      httpStatus: 413,
    });
    // Nothing stored by either refusal.
    const t = await api("GET", `/v1/topics/${topic}`);
    expect(t.body.queueStats[0].maxOffset).toBe(0);
  });

  it("nacks over the binding: the message comes back", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    const [sent] = await worker.produce([{ topic, body: "retry me" }]);
    expect(await worker.receiveAndNack(group, topic)).toEqual([sent!.msgId]);
    const g = await api("GET", `/v1/groups/${group}`);
    expect(g.body.topics[topic][0]).toMatchObject({ retrying: 1, inflight: 0 });
  });
});

describe("EdgemqRpc.request", () => {
  it("answers a path with a query string", async () => {
    const topic = await createTopic({ queues: 1 });
    await worker.produce(["p0", "p1", "p2"].map((body) => ({ topic, body })));
    const r = await raw("GET", `/v1/topics/${topic}/queues/0/messages?offset=1&max=1`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ nextOffset: 2, maxOffset: 3 });
    expect(r.body.messages.map((m: { body: string }) => m.body)).toEqual(["p1"]);
  });

  it("gives non-2xx answers back as { status, body } with the contract's error", async () => {
    const missing = unique("missing");
    expect(await raw("GET", `/v1/topics/${missing}`)).toEqual({
      status: 404,
      body: { error: { code: "TOPIC_NOT_FOUND", message: expect.any(String) } },
    });
    expect(await raw("GET", "/v1/nothing-here")).toMatchObject({
      status: 404,
      body: { error: { code: "NOT_FOUND" } },
    });
    const topic = await createTopic({ queues: 1 });
    expect(await raw("POST", `/v1/topics/${topic}/messages`, { messages: [] })).toMatchObject({
      status: 400,
      body: { error: { code: "BAD_REQUEST" } },
    });
    expect(await raw("GET", `/v1/topics/${topic}/queues/0/messages?offset=-1`)).toMatchObject({
      status: 400,
      body: { error: { code: "BAD_REQUEST" } },
    });
  });

  it("answers paths outside /v1/ with 404 NOT_FOUND", async () => {
    for (const path of ["/metrics", "/console", "v1/topics"]) {
      expect(await raw("GET", path)).toMatchObject({
        status: 404,
        body: { error: { code: "NOT_FOUND" } },
      });
    }
  });

  it("answers 404 to paths that only start with /v1/ until the URL parser resolves them", async () => {
    // Each of these resolves to /metrics, /console or another host, where the
    // binding's admin grant must not reach.
    for (const path of [
      "/v1/../metrics",
      "/v1/%2e%2e/metrics",
      "/v1/.%2E/metrics",
      "/v1/..\\metrics",
      "/v1/topics/../../console",
      "/v1/./../metrics?x=1",
    ]) {
      expect(await raw("GET", path), path).toMatchObject({
        status: 404,
        body: { error: { code: "NOT_FOUND" } },
      });
    }
    // A dot segment that stays under /v1/ is just the resolved contract path.
    expect((await raw("GET", "/v1/nothing/../topics")).status).toBe(200);
  });

  it("answers paths outside /v1/ with 404 NOT_FOUND (plain)", async () => {
    for (const path of ["/v1"]) {
      expect(await raw("GET", path)).toMatchObject({
        status: 404,
        body: { error: { code: "NOT_FOUND" } },
      });
    }
  });
});

describe("EdgemqRpc's typed shortcuts", () => {
  it("send, receive, ack, nack and pull", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    const r = await worker.shortcuts(topic, group);
    expect(r.sent.map((s) => [s.status, s.queue, s.offset])).toEqual([
      ["stored", 0, 0],
      ["stored", 0, 1],
    ]);
    expect(r.received).toEqual(["one", "two"]);
    expect(r.acked).toEqual([{ receipt: expect.any(String), ok: true }]);
    expect(r.nacked).toEqual([{ receipt: expect.any(String), ok: true }]);
    expect(r.pulled).toMatchObject({ nextOffset: 2, minOffset: 0, maxOffset: 2 });
    expect(r.pulled.messages.map((m) => m.body)).toEqual(["two"]);
    const g = await api("GET", `/v1/groups/${group}`);
    expect(g.body.topics[topic][0]).toMatchObject({ retrying: 1, inflight: 0 });
  });
});
