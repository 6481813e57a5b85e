/**
 * Long-polls wait in the gateway, watching shards over hibernatable
 * WebSockets (src/gateway/shard-watch.ts, src/broker/watch/watchers.ts). Each test
 * waits until the long-poll is watching before it changes anything, so the
 * wake-up path is the one under test (not the first look).
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { WATCH_URL, watchUrl } from "../../src/broker/watch/watchers.ts";
import { api, createTopic, shardStub, unique } from "./helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const watcherCount = (topic: string, queue: number) =>
  runInDurableObject(shardStub(topic, queue), (_i, state) => state.getWebSockets().length);

/** Waits (bounded) until every listed queue has `n` watchers. */
async function untilWatchers(topic: string, queues: number[], n = 1): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const counts = await Promise.all(queues.map((q) => watcherCount(topic, q)));
    if (counts.every((c) => c === n)) return;
    await sleep(10);
  }
  throw new Error(`no ${n} watcher(s) on queues ${queues.join(",")} of ${topic}`);
}

const bodies = (r: { body: { messages: { body: string }[] } }) =>
  r.body.messages.map((m) => m.body);

describe("long-poll through shard watchers", () => {
  it("wakes a waiting pull when a message is appended, and the shard forgets the watcher after", async () => {
    const topic = await createTopic({ queues: 1 });
    const waiting = api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0&waitMs=30000`);
    await untilWatchers(topic, [0]);
    await api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "hello" }] });
    expect(bodies(await waiting)).toEqual(["hello"]);
    await untilWatchers(topic, [0], 0);
  });

  it("keeps a filtered pull waiting through messages it skips, and wakes it for one it takes", async () => {
    const topic = await createTopic({ queues: 1 });
    const waiting = api(
      "GET",
      `/v1/topics/${topic}/queues/0/messages?offset=0&waitMs=30000&filter=TagA`,
    );
    await untilWatchers(topic, [0]);
    await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "skip", tag: "TagB" }],
    });
    await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "take", tag: "TagA" }],
    });
    const r = await waiting;
    expect(bodies(r)).toEqual(["take"]);
    expect(r.body.nextOffset).toBe(2);
  });

  it("wakes a waiting receive when a message lands on any queue of the topic", async () => {
    const topic = await createTopic({ queues: 4 });
    const group = unique("g");
    const waiting = api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { waitMs: 30000 });
    await untilWatchers(topic, [0, 1, 2, 3]);
    await api("POST", `/v1/topics/${topic}/messages?queue=3`, { messages: [{ body: "on three" }] });
    const r = await waiting;
    expect(bodies(r)).toEqual(["on three"]);
    expect(r.body.messages[0].receipt).toEqual(expect.any(String));
    await untilWatchers(topic, [0, 1, 2, 3], 0);
  });

  it("wakes a waiting receive when a nacked message is due again", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "again" }] });
    const first = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, {});
    expect(bodies(first)).toEqual(["again"]);
    const waiting = api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { waitMs: 30000 });
    await untilWatchers(topic, [0]);
    await api("POST", `/v1/groups/${group}/topics/${topic}/nack`, {
      receipts: [first.body.messages[0].receipt],
      delayMs: 0,
    });
    const r = await waiting;
    expect(bodies(r)).toEqual(["again"]);
    expect(r.body.messages[0].reconsumeTimes).toBe(1);
  });

  it("does not hand a waiting receive's group a message another group's receive woke for", async () => {
    const topic = await createTopic({ queues: 1 });
    const [g1, g2] = [unique("g"), unique("g")];
    const w1 = api("POST", `/v1/groups/${g1}/topics/${topic}/receive`, { waitMs: 30000 });
    const w2 = api("POST", `/v1/groups/${g2}/topics/${topic}/receive`, { waitMs: 30000 });
    await untilWatchers(topic, [0], 2);
    await api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "both" }] });
    // Every group gets every message.
    expect(bodies(await w1)).toEqual(["both"]);
    expect(bodies(await w2)).toEqual(["both"]);
  });
});

describe("a shard's watcher sockets", () => {
  it("refuses a fetch that is not a watcher upgrade, or a malformed watch", async () => {
    const topic = await createTopic({ queues: 1 });
    const plain = await shardStub(topic, 0).fetch(WATCH_URL);
    expect(plain.status).toBe(426);
    const bad = await shardStub(topic, 0).fetch(`${WATCH_URL}?kind=pull&offset=-3`, {
      headers: { Upgrade: "websocket" },
    });
    expect(bad.status).toBe(400);
  });

  it("sends a pull watcher a notice with the new maxOffset when its offset is passed", async () => {
    const topic = await createTopic({ queues: 1 });
    const res = await shardStub(topic, 0).fetch(
      watchUrl({ kind: "pull", offset: 0, filter: null }),
      {
        headers: { Upgrade: "websocket" },
      },
    );
    const ws = res.webSocket!;
    ws.accept();
    const notice = new Promise<string>((resolve) =>
      ws.addEventListener("message", (e) => resolve(String(e.data))),
    );
    await api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "a" }, { body: "b" }] });
    expect(JSON.parse(await notice)).toEqual({ maxOffset: 2 });
    ws.close(1000, "done");
  });
});
