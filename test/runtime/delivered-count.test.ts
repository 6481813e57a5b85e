import { describe, expect, it } from "vitest";
import { api, createTopic } from "./helpers.ts";
import { savedCounters } from "./storage-sql.ts";

const savedDelivered = (topic: string) =>
  savedCounters(topic, ["delivered"]).then((c) => c.delivered ?? 0);

describe("the delivered count of pulls", () => {
  it("shows in the queue stats at once", async () => {
    const topic = await createTopic({ queues: 1 });
    await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "a" }, { body: "b" }, { body: "c" }],
    });
    await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0&max=2`);
    const described = await api("GET", `/v1/topics/${topic}`);
    expect(described.body.queueStats[0].delivered).toBe(2);
  });

  it("is saved with the shard's next send", async () => {
    const topic = await createTopic({ queues: 1 });
    await api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "a" }, { body: "b" }] });
    await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0`);
    await api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "c" }] });
    expect(await savedDelivered(topic)).toBe(2);
  });
});
