import { describe, expect, it } from "vitest";
import { api, createTopic } from "./helpers.ts";

describe("send and pull", () => {
  it("stores a message and pulls it back by offset", async () => {
    const topic = await createTopic({ queues: 1 });
    const sent = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "hello", tag: "TagA", keys: ["k1"], properties: { region: "eu" } }],
    });
    expect(sent.status).toBe(200);
    expect(sent.body.results[0]).toMatchObject({ queue: 0, offset: 0, status: "stored" });
    const pulled = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0`);
    expect(pulled.status).toBe(200);
    expect(pulled.body).toMatchObject({ nextOffset: 1, minOffset: 0, maxOffset: 1, skipped: 0 });
    expect(pulled.body.messages[0]).toMatchObject({
      body: "hello",
      tag: "TagA",
      keys: ["k1"],
      properties: { region: "eu" },
      topic,
      queue: 0,
      offset: 0,
      reconsumeTimes: 0,
    });
  });
});
