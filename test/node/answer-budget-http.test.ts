/**
 * Byte budgets seen from the SDK, against the real local server: answers of
 * near-1-MiB messages are cut by bytes, and the SDK's consumers page on to
 * every message (as they do when an answer is cut by `max`), once each.
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import { Admin, type Message, PullConsumer, SimpleConsumer } from "../../client/index.ts";
import type { LocalServer } from "../../scripts/local-server.ts";
import { call, serverFixture } from "./server-fixture.ts";

const fixture = serverFixture("budget");
let server: LocalServer;
let admin: Admin;

beforeAll(async () => {
  server = await fixture.start();
  admin = new Admin({ endpoint: server.url });
});

const BIG = 1000 * 1024;
/** More than a 32 MiB RPC could carry from one queue. */
const N = 36;
const big = (i: number) => `#${i}:`.padEnd(BIG, "x");
const index = (m: Message) => Number(/^#(\d+):/.exec(m.body)![1]);

async function bigTopic(name: string, queues: number): Promise<void> {
  await admin.createTopic(name, { queues });
  for (let i = 0; i < N; i += 3) {
    const messages = [0, 1, 2].map((j) => ({ body: big(i + j) }));
    const r = await call(server.url, "POST", `/v1/topics/${name}/messages`, { messages });
    expect(r.status).toBe(200);
  }
}

describe("SDK consumers over answers cut by bytes", () => {
  it("PullConsumer reads every near-1-MiB message once, in answers of a few", async () => {
    const topic = `budget-pull-${Date.now().toString(36)}`;
    await bigTopic(topic, 1);
    const first = await call(
      server.url,
      "GET",
      `/v1/topics/${topic}/queues/0/messages?offset=0&max=100`,
    );
    expect(first.status).toBe(200);
    expect(first.body.messages.length).toBeGreaterThan(0);
    expect(first.body.messages.length).toBeLessThan(first.body.maxOffset);
    const consumer = new PullConsumer({
      endpoint: server.url,
      group: `${topic}-g`,
      topic,
      mode: "broadcasting",
      consumeFrom: "earliest",
      max: 100,
      waitMs: 200,
    });
    const got: number[] = [];
    for (let round = 0; round < 40 && got.length < N; round++) {
      got.push(...(await consumer.poll()).map(index));
    }
    await consumer.shutdown();
    expect(got.sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
  });

  it("SimpleConsumer receives every near-1-MiB message once, none left to lapse", async () => {
    const topic = `budget-recv-${Date.now().toString(36)}`;
    await bigTopic(topic, 2);
    const consumer = new SimpleConsumer({
      endpoint: server.url,
      group: `${topic}-g`,
      topic,
      waitMs: 200,
    });
    const got: number[] = [];
    for (let round = 0; round < 40 && got.length < N; round++) {
      const batch = await consumer.receive({ max: 100 });
      expect(batch.length).toBeLessThan(N);
      got.push(...batch.map(index));
      for (const m of batch) await consumer.ack(m);
    }
    expect(got.sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
    consumer.close();
    // Acks over a streaming session are written within about 20 ms (docs/protocol.md).
    await vi.waitFor(
      async () => {
        const stats = await call(server.url, "GET", `/v1/groups/${topic}-g`);
        const queues = stats.body.topics[topic] as { inflight: number; dlq: number }[];
        expect(queues).toHaveLength(2);
        expect(queues.every((q) => q.inflight === 0 && q.dlq === 0)).toBe(true);
      },
      { timeout: 5000, interval: 50 },
    );
  });
});
