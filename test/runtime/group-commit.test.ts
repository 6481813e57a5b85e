import { describe, expect, it } from "vitest";
import { api, createTopic } from "./helpers.ts";

type Result = { msgId: string; offset: number | null; status: string };

const send = (topic: string, bodies: string[], extra: Record<string, unknown> = {}) =>
  api("POST", `/v1/topics/${topic}/messages`, {
    messages: bodies.map((body) => ({ body, ...extra })),
  });

async function pullBodies(topic: string): Promise<string[]> {
  const r = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0&max=1000`);
  return r.body.messages.map((m: { body: string }) => m.body);
}

describe("concurrent sends to one queue (group commit)", () => {
  it("answers each send with its own results, and stores every message once at dense offsets", async () => {
    const topic = await createTopic({ queues: 1 });
    const batches = Array.from({ length: 20 }, (_, i) => [`a${i}`, `b${i}`]);
    const answers = await Promise.all(batches.map((b) => send(topic, b)));
    const offsets: number[] = [];
    answers.forEach((a, i) => {
      expect(a.status).toBe(200);
      const results = a.body.results as Result[];
      expect(results.map((r) => r.status)).toEqual(["stored", "stored"]);
      // A batch stays contiguous and in request order.
      expect(results[1]!.offset).toBe(results[0]!.offset! + 1);
      offsets.push(...results.map((r) => r.offset!));
      expect(results).toHaveLength(batches[i]!.length);
    });
    expect([...offsets].sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const bodies = await pullBodies(topic);
    expect([...bodies].sort()).toEqual(batches.flat().sort());
  });

  it("refuses a batch over the backlog bound without storing any of it or failing the others", async () => {
    const topic = await createTopic({ queues: 1, maxBacklogMessages: 5, overflowPolicy: "reject" });
    const [small1, big, small2] = await Promise.all([
      send(topic, ["s1", "s2"]),
      send(
        topic,
        Array.from({ length: 10 }, (_, i) => `big${i}`),
      ),
      send(topic, ["s3", "s4"]),
    ]);
    expect(small1!.status).toBe(200);
    expect(small2!.status).toBe(200);
    expect(big!.status).toBe(507);
    expect(big!.body.error.code).toBe("QUEUE_FULL");
    expect((await pullBodies(topic)).sort()).toEqual(["s1", "s2", "s3", "s4"]);
  });

  it("stores a msgId sent twice at once only once, and answers the copy with the first one's offset", async () => {
    const topic = await createTopic({ queues: 1 });
    const [a, b] = await Promise.all([
      send(topic, ["first"], { msgId: "same-id" }),
      send(topic, ["second"], { msgId: "same-id" }),
    ]);
    const results = [a!.body.results[0], b!.body.results[0]] as Result[];
    expect(results.map((r) => r.status).sort()).toEqual(["duplicate", "stored"]);
    expect(results[0]!.offset).toBe(results[1]!.offset);
    expect(await pullBodies(topic)).toHaveLength(1);
  });
});
