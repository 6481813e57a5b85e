import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";

describe("topic admin", () => {
  it("creates a topic with defaults and answers its full config", async () => {
    const topic = unique("cfg");
    const r = await api("PUT", `/v1/topics/${topic}`, {});
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      topic,
      queues: 4,
      retentionMs: 259_200_000,
      maxMessageBytes: 1_048_576,
      maxBacklogMessages: null,
      maxBacklogBytes: null,
      overflowPolicy: "reject",
    });
  });

  it("grows queues but refuses to shrink them, changing nothing", async () => {
    const topic = await createTopic({ queues: 2 });
    expect((await api("PUT", `/v1/topics/${topic}`, { queues: 3 })).body.queues).toBe(3);
    const shrink = await api("PUT", `/v1/topics/${topic}`, { queues: 1 });
    expect(shrink.status).toBe(400);
    expect(shrink.body.error.code).toBe("BAD_REQUEST");
    expect((await api("GET", `/v1/topics/${topic}/route`)).body).toEqual({ topic, queues: 3 });
  });

  it("lists, describes with queue stats, and deletes a topic with its data", async () => {
    const topic = await createTopic({ queues: 2 });
    await api("POST", `/v1/topics/${topic}/messages?queue=1`, {
      messages: [{ body: "a" }, { body: "b" }],
    });
    const list = await api("GET", "/v1/topics");
    expect(list.body.topics.map((t: { topic: string }) => t.topic)).toContain(topic);
    const described = await api("GET", `/v1/topics/${topic}`);
    expect(described.body.queueStats).toEqual([
      expect.objectContaining({ queue: 0, minOffset: 0, maxOffset: 0, messages: 0 }),
      expect.objectContaining({ queue: 1, minOffset: 0, maxOffset: 2, messages: 2, bytes: 2 }),
    ]);
    expect((await api("DELETE", `/v1/topics/${topic}`)).status).toBe(200);
    expect((await api("GET", `/v1/topics/${topic}`)).body.error.code).toBe("TOPIC_NOT_FOUND");
    const send = await api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "x" }] });
    expect(send.status).toBe(404);
    // Re-creating the topic starts from an empty log.
    await api("PUT", `/v1/topics/${topic}`, { queues: 2 });
    const pulled = await api("GET", `/v1/topics/${topic}/queues/1/messages?offset=0`);
    expect(pulled.body).toMatchObject({ messages: [], minOffset: 0, maxOffset: 0 });
  });

  it("answers TOPIC_NOT_FOUND for the route of an unknown topic", async () => {
    const r = await api("GET", `/v1/topics/${unique("nope")}/route`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("TOPIC_NOT_FOUND");
  });

  it("rejects invalid names and unknown config fields", async () => {
    const bad = await api("PUT", "/v1/topics/has.dot", {});
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("INVALID_NAME");
    const long = await api("PUT", `/v1/topics/${"x".repeat(128)}`, {});
    expect(long.body.error.code).toBe("INVALID_NAME");
    const field = await api("PUT", `/v1/topics/${unique("f")}`, { queuez: 2 });
    expect(field.status).toBe(400);
    const policy = await api("PUT", `/v1/topics/${unique("f")}`, { overflowPolicy: "random" });
    expect(policy.status).toBe(400);
    const retention = await api("PUT", `/v1/topics/${unique("f")}`, { retentionMs: 10 });
    expect(retention.status).toBe(400);
  });
});
