/**
 * The SDK over streaming sessions against the real local server (workerd,
 * SQLite on disk), from Node 22's global WebSocket: sessions are the default
 * there. Producers route client-side and batch adaptively; consumers get
 * pushes; a server killed mid-stream loses no acknowledged send and stores
 * none twice (the SDK resends with the same msgIds); an expired token's
 * session is replaced with a fresh token.
 */
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "../../scripts/local-server.ts";
import {
  Admin,
  type Message,
  Producer,
  PullConsumer,
  PushConsumer,
  SimpleConsumer,
} from "../../client/index.ts";
import { serverFixture } from "./server-fixture.ts";

const ADMIN_TOKEN = "session-sdk-admin";
const TOKEN_SECRET = "session-sdk-secret";

/** A free loopback port, so a restarted server comes back where the clients look. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const fixture = serverFixture("session-sdk");
let port: number;
let server: LocalServer;
let conn: { endpoint: string; token: string };
let admin: Admin;

async function start(): Promise<LocalServer> {
  const s = await startLocalServer({
    port,
    dataDir: fixture.dataDir,
    quiet: true,
    env: { ADMIN_TOKEN, TOKEN_SECRET },
  });
  return s;
}

beforeAll(async () => {
  port = await freePort();
  server = await start();
  conn = { endpoint: server.url, token: ADMIN_TOKEN };
  admin = new Admin(conn);
});

afterAll(async () => {
  await server?.stop("SIGKILL");
});

let n = 0;
const unique = (p: string) => `${p}-${Date.now().toString(36)}-${(n++).toString(36)}`;

/** Every message of a topic, read by offset over HTTP. */
async function stored(topic: string, queues: number): Promise<Message[]> {
  const out: Message[] = [];
  for (let q = 0; q < queues; q++) {
    let offset = 0;
    for (;;) {
      const res = await fetch(
        `${server.url}/v1/topics/${topic}/queues/${q}/messages?offset=${offset}&max=1000`,
        { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
      );
      const page = (await res.json()) as { messages: Message[]; nextOffset: number };
      out.push(...page.messages);
      if (page.messages.length === 0) break;
      offset = page.nextOffset;
    }
  }
  return out;
}

/** A fetch that counts the HTTP requests a client makes. */
function countingFetch() {
  const paths: string[] = [];
  const f: typeof fetch = (input, init) => {
    paths.push(new URL(String(input)).pathname);
    return fetch(input, init);
  };
  return { fetch: f, paths };
}

describe("sessions from the SDK", () => {
  it("sends over one session per queue: only the route goes over HTTP", async () => {
    const topic = unique("s-send");
    await admin.createTopic(topic, { queues: 4 });
    const counter = countingFetch();
    const producer = new Producer({ ...conn, fetch: counter.fetch });
    const results = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        producer.send({ topic, body: `m${i}`, shardingKey: `k${i % 10}` }),
      ),
    );
    expect(results.every((r) => r.status === "stored")).toBe(true);
    expect(counter.paths).toEqual([`/v1/topics/${topic}/route`]);
    const all = await stored(topic, 4);
    expect(all).toHaveLength(400);
    // Same sharding key, same queue (the gateway's hash), in send order.
    for (let k = 0; k < 10; k++) {
      const mine = all.filter((m) => m.shardingKey === `k${k}`);
      expect(new Set(mine.map((m) => m.queue)).size).toBe(1);
      const order = mine.sort((a, b) => a.offset - b.offset).map((m) => Number(m.body.slice(1)));
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }
    await producer.close();
  });

  it("sends over HTTP when sessions are off", async () => {
    const topic = unique("s-http");
    await admin.createTopic(topic, { queues: 1 });
    const counter = countingFetch();
    const producer = new Producer({ ...conn, fetch: counter.fetch, sessions: false });
    await producer.send({ topic, body: "x" });
    expect(counter.paths).toEqual([`/v1/topics/${topic}/messages`]);
    await producer.close();
  });

  it("pushes to a PushConsumer as messages are sent, each handled and acked once", async () => {
    const topic = unique("s-push");
    const group = unique("g");
    await admin.createTopic(topic, { queues: 2 });
    const seen: string[] = [];
    const consumer = new PushConsumer({ ...conn, group, concurrency: 4 });
    consumer.subscribe(topic, (m) => {
      seen.push(m.body);
    });
    const producer = new Producer(conn);
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => producer.send({ topic, body: `p${i}` })),
    );
    for (let i = 0; i < 200 && seen.length < 50; i++) await new Promise((r) => setTimeout(r, 25));
    await consumer.shutdown();
    expect([...seen].sort()).toEqual(Array.from({ length: 50 }, (_, i) => `p${i}`).sort());
    // Acked: nothing in flight for the group once the lazy acks are written.
    let inflight = -1;
    for (let i = 0; i < 100 && inflight !== 0; i++) {
      const g = await admin.getGroup(group);
      inflight = Object.values(g.topics[topic] ?? []).reduce((a, q) => a + q.inflight, 0);
      if (inflight !== 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(inflight).toBe(0);
    await producer.close();
  });

  it("receives with a SimpleConsumer over sessions and acks receipts there", async () => {
    const topic = unique("s-simple");
    const group = unique("g");
    await admin.createTopic(topic, { queues: 1 });
    const producer = new Producer(conn);
    await producer.sendBatch([
      { topic, body: "a" },
      { topic, body: "b" },
    ]);
    const consumer = new SimpleConsumer({ ...conn, group, topic, waitMs: 5000 });
    const got: Message[] = [];
    for (let i = 0; i < 10 && got.length < 2; i++)
      got.push(...(await consumer.receive({ max: 10 })));
    expect(got.map((m) => m.body).sort()).toEqual(["a", "b"]);
    const results = await consumer.ackMany(got);
    expect(results.every((r) => "ok" in r && r.ok)).toBe(true);
    // A second ack of the same receipt is refused.
    await expect(consumer.ack(got[0]!)).rejects.toMatchObject({ code: "RECEIPT_EXPIRED" });
    consumer.close();
    await producer.close();
  });

  it("pulls over sessions with a PullConsumer: pushed from the group's offset, committed", async () => {
    const topic = unique("s-pull");
    const group = unique("g");
    await admin.createTopic(topic, { queues: 2 });
    const counter = countingFetch();
    const consumer = new PullConsumer({
      ...conn,
      fetch: counter.fetch,
      group,
      topic,
      waitMs: 3000,
    });
    const producer = new Producer(conn);
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => producer.send({ topic, body: `q${i}` })),
    );
    const got: Message[] = [];
    for (let i = 0; i < 20 && got.length < 30; i++) got.push(...(await consumer.poll()));
    expect(got.map((m) => m.body).sort()).toEqual(
      Array.from({ length: 30 }, (_, i) => `q${i}`).sort(),
    );
    // No pull request went over HTTP (heartbeats do).
    expect(counter.paths.filter((p) => p.endsWith("/messages"))).toEqual([]);
    await consumer.shutdown();
    const lag = await admin.totalLag(group, topic);
    expect(lag).toBe(0);
    await producer.close();
  });

  it("follows a topic that grows: a PushConsumer gets messages of the new queues", async () => {
    const topic = unique("s-grow");
    const group = unique("g");
    await admin.createTopic(topic, { queues: 1 });
    const seen: string[] = [];
    const consumer = new PushConsumer({ ...conn, group });
    consumer.subscribe(topic, (m) => void seen.push(`${m.queue}:${m.body}`));
    const producer = new Producer({ ...conn, sessions: false });
    await producer.send({ topic, body: "first", queue: 0 });
    for (let i = 0; i < 200 && seen.length < 1; i++) await new Promise((r) => setTimeout(r, 10));
    await admin.createTopic(topic, { queues: 3 });
    await producer.send({ topic, body: "later", queue: 2 });
    for (let i = 0; i < 300 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(seen.sort()).toEqual(["0:first", "2:later"]);
    await consumer.shutdown();
    await producer.close();
  });

  it("replaces a session whose token expired with one on a fresh token", async () => {
    const topic = unique("s-exp");
    await admin.createTopic(topic, { queues: 1 });
    let minted = 0;
    const token = async () => {
      minted++;
      return admin.createToken({ sub: "short", publish: [topic], ttlSeconds: 1 });
    };
    const producer = new Producer({ endpoint: server.url, token });
    expect((await producer.send({ topic, body: "before" })).status).toBe("stored");
    await new Promise((r) => setTimeout(r, 2300));
    expect((await producer.send({ topic, body: "after" })).status).toBe("stored");
    expect(minted).toBeGreaterThanOrEqual(2);
    expect((await stored(topic, 1)).map((m) => m.body)).toEqual(["before", "after"]);
    await producer.close();
  });

  it("loses no acknowledged send and stores none twice when the server is killed mid-stream", async () => {
    const topic = unique("s-kill");
    await admin.createTopic(topic, { queues: 2 });
    const producer = new Producer({ ...conn, retry: { maxAttempts: 20, timeoutMs: 10_000 } });
    const TOTAL = 1200;
    const acked: string[] = [];
    const failures: unknown[] = [];
    // Waves of 40 concurrent sends, so the stream is still going when the server dies.
    const stream = (async () => {
      for (let w = 0; w < TOTAL / 40; w++) {
        await Promise.all(
          Array.from({ length: 40 }, (_, i) => {
            const body = `k${w * 40 + i}`;
            return producer.send({ topic, body }).then(
              () => void acked.push(body),
              (e: unknown) => void failures.push(e),
            );
          }),
        );
      }
    })();
    for (let i = 0; i < 2000 && acked.length < 200; i++) await new Promise((r) => setTimeout(r, 2));
    const ackedAtKill = acked.length;
    await server.stop("SIGKILL");
    server = await start();
    await stream;
    expect(ackedAtKill).toBeLessThan(TOTAL);
    expect(failures).toEqual([]);
    const bodies = (await stored(topic, 2)).map((m) => m.body);
    expect(new Set(bodies).size).toBe(bodies.length); // none twice
    expect(bodies).toHaveLength(TOTAL); // none lost
    await producer.close();
  });
});
