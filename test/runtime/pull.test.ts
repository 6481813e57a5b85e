import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";

describe("pull by offset", () => {
  it("pages through a queue with nextOffset and never skips a message", async () => {
    const topic = await createTopic({ queues: 1 });
    await api("POST", `/v1/topics/${topic}/messages`, {
      messages: Array.from({ length: 25 }, (_, i) => ({ body: String(i) })),
    });
    const seen: string[] = [];
    let offset = 0;
    for (let i = 0; i < 10; i++) {
      const r = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=${offset}&max=7`);
      expect(r.body.messages.length).toBeLessThanOrEqual(7);
      seen.push(...r.body.messages.map((m: { body: string }) => m.body));
      if (r.body.nextOffset === offset) break;
      offset = r.body.nextOffset;
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => String(i)));
    expect(offset).toBe(25);
  });

  it("filters by tag list in the shard and moves past filtered messages", async () => {
    const topic = await createTopic({ queues: 1 });
    await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [
        { body: "a", tag: "TagA" },
        { body: "b", tag: "TagB" },
        { body: "c", tag: "TagC" },
        { body: "none" },
      ],
    });
    const r = await api(
      "GET",
      `/v1/topics/${topic}/queues/0/messages?offset=0&filter=${encodeURIComponent("TagA || TagC")}`,
    );
    expect(r.body.messages.map((m: { body: string }) => m.body)).toEqual(["a", "c"]);
    expect(r.body.nextOffset).toBe(4);
    const bad = await api(
      "GET",
      `/v1/topics/${topic}/queues/0/messages?offset=0&filter=${encodeURIComponent("sql:a = ")}`,
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error.position).toBe(8);
  });

  it("answers a long-poll as soon as a message is appended", async () => {
    const topic = await createTopic({ queues: 1 });
    const waiting = api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0&waitMs=10000`);
    await new Promise((r) => setTimeout(r, 100));
    await api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "wake up" }] });
    const r = await waiting;
    expect(r.body.messages.map((m: { body: string }) => m.body)).toEqual(["wake up"]);
  });

  it("returns an empty answer when a long-poll times out", async () => {
    const topic = await createTopic({ queues: 1 });
    const r = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0&waitMs=200`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      messages: [],
      nextOffset: 0,
      minOffset: 0,
      maxOffset: 0,
      skipped: 0,
    });
  });

  it("rejects bad offsets, max and waitMs with 400", async () => {
    const topic = await createTopic({ queues: 1 });
    for (const qs of [
      "offset=-1",
      "offset=1.5",
      "offset=abc",
      "offset=0&max=0",
      "offset=0&max=1001",
      "offset=0&waitMs=30001",
      "",
    ]) {
      const r = await api("GET", `/v1/topics/${topic}/queues/0/messages?${qs}`);
      expect({ qs, status: r.status, code: r.body.error?.code }).toEqual({
        qs,
        status: 400,
        code: "BAD_REQUEST",
      });
    }
    expect((await api("GET", `/v1/topics/${topic}/queues/9/messages?offset=0`)).status).toBe(400);
  });
});

describe("group offsets", () => {
  it("commits an offset and pulls from it when no offset is given", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "0" }, { body: "1" }, { body: "2" }],
    });
    const commit = await api("PUT", `/v1/groups/${group}/topics/${topic}/queues/0/offset`, {
      offset: 2,
    });
    expect(commit.status).toBe(200);
    const pulled = await api("GET", `/v1/topics/${topic}/queues/0/messages?group=${group}`);
    expect(pulled.body.messages.map((m: { body: string }) => m.body)).toEqual(["2"]);
    const offsets = await api("GET", `/v1/groups/${group}/topics/${topic}/offsets`);
    expect(offsets.body.offsets).toEqual([{ queue: 0, offset: 2, maxOffset: 3, lag: 1 }]);
  });

  it("refuses an offset beyond the end or negative, keeping the committed one", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await api("PUT", `/v1/groups/${group}/topics/${topic}/queues/0/offset`, { offset: 0 });
    for (const offset of [5, -1, 1.5, "1"]) {
      const r = await api("PUT", `/v1/groups/${group}/topics/${topic}/queues/0/offset`, { offset });
      expect(r.status).toBe(400);
    }
    const offsets = await api("GET", `/v1/groups/${group}/topics/${topic}/offsets`);
    expect(offsets.body.offsets[0].offset).toBe(0);
  });
});

describe("errors", () => {
  it("answers unknown routes with NOT_FOUND in the contract's shape", async () => {
    const r = await api("GET", "/v1/nothing-here");
    expect(r.status).toBe(404);
    expect(r.body).toEqual({ error: { code: "NOT_FOUND", message: expect.any(String) } });
  });

  it("serves health without a token", async () => {
    const r = await api("GET", "/v1/health", undefined, {});
    expect(r).toEqual({ status: 200, body: { ok: true } });
  });
});
