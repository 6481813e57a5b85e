/**
 * Parked long-polls must not amplify work (issue 16, item 6). The shard
 * groups its watchers by what they wait for and checks each distinct
 * condition once per change, matches a change to the waits it can end,
 * forgets a wait whose socket closed, and caps the waits a scoped token may
 * park. Work is asserted as counts (the shard's `watchStats`: waits,
 * distinct conditions, checks run), never as timings; bench/parked-waits.ts
 * measures the latency.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { unwrap } from "../../src/broker/outcome.ts";
import { openShardStore } from "../../src/broker/store/index.ts";
import { watchUrl } from "../../src/broker/watch/watchers.ts";
import { ShardWatch } from "../../src/gateway/shard-watch.ts";
import { FilterCache } from "../../src/protocol/filter.ts";
import { Limits } from "../../src/protocol/limits.ts";
import { api, createTopic, shardStub, unique } from "./helpers.ts";
import { bearer, expectError, mint } from "./token-helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function watchStats(topic: string, queue = 0) {
  return unwrap(await shardStub(topic, queue).watchStats());
}

/** Waits (bounded) until the queue has `n` parked waits. */
async function untilWaits(topic: string, n: number, queue = 0): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if ((await watchStats(topic, queue)).waits === n) return;
    await sleep(10);
  }
  throw new Error(
    `no ${n} parked waits on ${topic}#${queue}: ${JSON.stringify(await watchStats(topic, queue))}`,
  );
}

const pull = (topic: string, query: string, headers?: Record<string, string>) =>
  api("GET", `/v1/topics/${topic}/queues/0/messages?${query}`, undefined, headers);

const send = (topic: string, messages: unknown[]) =>
  api("POST", `/v1/topics/${topic}/messages`, { messages });

describe("parked waits, grouped by what they wait for", () => {
  it("runs no check for parked filtered pulls when an ack, a nack or a receive changes a group", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(
      topic,
      Array.from({ length: 50 }, (_, i) => ({ body: `b${i}`, tag: "Other" })),
    );
    const parked = Array.from({ length: 10 }, () =>
      pull(topic, "offset=0&filter=Wanted&waitMs=30000"),
    );
    await untilWaits(topic, 10);
    const before = await watchStats(topic);
    expect(before.conditions).toBe(1);
    const got = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 2 });
    const [a, b] = got.body.messages.map((m: { receipt: string }) => m.receipt);
    await api("POST", `/v1/groups/${group}/topics/${topic}/ack`, { receipts: [a] });
    await api("POST", `/v1/groups/${group}/topics/${topic}/nack`, { receipts: [b], delayMs: 0 });
    expect((await watchStats(topic)).checks).toBe(before.checks);
    // A message they want wakes all of them, for one check.
    await send(topic, [{ body: "wanted", tag: "Wanted" }]);
    for (const r of await Promise.all(parked)) expect(r.body.messages[0].body).toBe("wanted");
    expect((await watchStats(topic)).checks).toBe(before.checks + 1);
  });

  it("checks an append once per distinct filter, however many pulls wait on it", async () => {
    const topic = await createTopic({ queues: 1 });
    const a = Array.from({ length: 8 }, () => pull(topic, "offset=0&filter=TagA&waitMs=30000"));
    const b = Array.from({ length: 8 }, () => pull(topic, "offset=0&filter=TagB&waitMs=30000"));
    await untilWaits(topic, 16);
    const before = await watchStats(topic);
    expect(before.conditions).toBe(2);
    await send(topic, [{ body: "neither", tag: "TagC" }]);
    expect((await watchStats(topic)).checks).toBe(before.checks + 2);
    await send(topic, [
      { body: "a", tag: "TagA" },
      { body: "b", tag: "TagB" },
    ]);
    for (const r of await Promise.all(a))
      expect(r.body.messages.map((m: any) => m.body)).toEqual(["a"]);
    for (const r of await Promise.all(b))
      expect(r.body.messages.map((m: any) => m.body)).toEqual(["b"]);
    expect((await watchStats(topic)).checks).toBe(before.checks + 4);
  });

  it("checks a group's parked receives once after a change of that group, and no other group's", async () => {
    const topic = await createTopic({ queues: 1 });
    const [mine, other] = [unique("g"), unique("g")];
    await send(topic, [{ body: "retry me", tag: "T" }]);
    const first = await api("POST", `/v1/groups/${mine}/topics/${topic}/receive`, {});
    const receipt = first.body.messages[0].receipt;
    const waiting = (group: string) =>
      api("POST", `/v1/groups/${group}/topics/${topic}/receive`, {
        max: 1,
        waitMs: 30000,
        filter: "T",
      });
    const ours = Array.from({ length: 6 }, () => waiting(mine));
    // The other group got the message already: it waits for new ones only.
    await api("POST", `/v1/groups/${other}/topics/${topic}/receive`, {});
    const theirs = Array.from({ length: 4 }, () => waiting(other));
    await untilWaits(topic, 10);
    const before = await watchStats(topic);
    expect(before.conditions).toBe(2);
    await api("POST", `/v1/groups/${mine}/topics/${topic}/nack`, {
      receipts: [receipt],
      delayMs: 0,
    });
    // One of ours takes the retry; the rest keep waiting.
    const winner = await Promise.race(ours);
    expect(winner.body.messages.map((m: any) => m.body)).toEqual(["retry me"]);
    expect((await watchStats(topic)).checks).toBe(before.checks + 1);
    // Release the rest.
    await send(
      topic,
      Array.from({ length: 10 }, (_, i) => ({ body: `n${i}`, tag: "T" })),
    );
    await Promise.all([...ours, ...theirs]);
  });
});

describe("a wait whose client is gone", () => {
  it("leaves the shard when its watcher socket closes", async () => {
    const topic = await createTopic({ queues: 1 });
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await shardStub(topic, 0).fetch(
        watchUrl({ kind: "pull", offset: 0, filter: "TagA" }),
        { headers: { Upgrade: "websocket" } },
      );
      res.webSocket!.accept();
      sockets.push(res.webSocket!);
    }
    await untilWaits(topic, 3);
    for (const ws of sockets) ws.close(1000, "client gone");
    await untilWaits(topic, 0);
    // Nothing is told, nothing checked for them any more.
    const before = await watchStats(topic);
    await send(topic, [{ body: "x", tag: "TagA" }]);
    expect((await watchStats(topic)).checks).toBe(before.checks);
  });

  it("ends at once when the client's request is aborted, and its sockets close", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    const abort = new AbortController();
    const watch = await ShardWatch.open(
      [shardStub(topic, 0), shardStub(topic, 1)],
      { kind: "receive", group, filter: null },
      null,
      abort.signal,
    );
    await Promise.all([untilWaits(topic, 1, 0), untilWaits(topic, 1, 1)]);
    const next = watch.next(30_000);
    abort.abort();
    expect(await next).toBeNull();
    watch.close();
    await Promise.all([untilWaits(topic, 0, 0), untilWaits(topic, 0, 1)]);
  });
});

describe("parked waits per token", () => {
  it(`answer the ${Limits.maxParkedWaitsPerToken + 1}th long-poll of one token on a queue 429 RATE_LIMITED with Retry-After`, async () => {
    const topic = await createTopic({ queues: 1 });
    const sub = unique("parker");
    const token = bearer(await mint({ sub, subscribe: [topic] }));
    const cap = Limits.maxParkedWaitsPerToken;
    const parked = Array.from({ length: cap }, () => pull(topic, "offset=0&waitMs=30000", token));
    await untilWaits(topic, cap);
    const over = await pull(topic, "offset=0&waitMs=30000", token);
    expectError({ status: over.status, body: { error: over.body.error } }, 429, "RATE_LIMITED");
    const raw = await fetchRaw(
      `/v1/topics/${topic}/queues/0/messages?offset=0&waitMs=30000`,
      token,
    );
    expect(raw.status).toBe(429);
    expect(Number(raw.headers.get("retry-after"))).toBeGreaterThan(0);
    // Another subject of the same scope, and the admin, still park.
    const otherToken = bearer(await mint({ sub: unique("other"), subscribe: [topic] }));
    const others = [
      pull(topic, "offset=0&waitMs=30000", otherToken),
      pull(topic, "offset=0&waitMs=30000"),
    ];
    await untilWaits(topic, cap + 2);
    // A pull that need not wait is never refused.
    expect((await pull(topic, "offset=0", token)).status).toBe(200);
    await send(topic, [{ body: "release" }]);
    for (const r of await Promise.all([...parked, ...others])) expect(r.status).toBe(200);
    await untilWaits(topic, 0);
    expect((await pull(topic, "offset=1&waitMs=10", token)).status).toBe(200);
  });

  it("count a receive against its token on every queue it parks on, and free them when it ends", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    const token = bearer(
      await mint({ sub: unique("receiver"), subscribe: [topic], groups: [group] }),
    );
    const r = api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { waitMs: 30000 }, token);
    await Promise.all([untilWaits(topic, 1, 0), untilWaits(topic, 1, 1)]);
    await api("POST", `/v1/topics/${topic}/messages?queue=1`, { messages: [{ body: "one" }] });
    expect((await r).body.messages.map((m: any) => m.body)).toEqual(["one"]);
    await Promise.all([untilWaits(topic, 0, 0), untilWaits(topic, 0, 1)]);
  });
});

describe("filtered scans", () => {
  it("read a whole row only for the messages they take", async () => {
    const topic = await createTopic({ queues: 1 });
    const big = "x".repeat(64 * 1024);
    await send(topic, [
      ...Array.from({ length: 30 }, () => ({ body: big, tag: "Other" })),
      { body: "mine", tag: "Mine" },
      ...Array.from({ length: 30 }, () => ({ body: big, tag: "Other", properties: { k: "v" } })),
    ]);
    await runInDurableObject(shardStub(topic, 0), (_i, state) => {
      const { sql, bodyRows } = countingBodies(state.storage.sql);
      const store = openShardStore(sql, (fn) => state.storage.transactionSync(fn));
      const filters = new FilterCache();
      const now = Date.now();
      expect(store.log.hasPullable(0, filters.get("Nothing"), now)).toBe(false);
      expect(store.log.hasPullable(0, filters.get("sql:k = 'w'"), now)).toBe(false);
      expect(bodyRows()).toBe(0);
      const r = store.log.pull(0, 32, filters.get("Mine"), now);
      expect(r.messages.map((m) => m.body)).toEqual(["mine"]);
      expect(r.nextOffset).toBe(61);
      expect(bodyRows()).toBe(1);
    });
  });
});

/**
 * A SQL handle that counts the rows SQLite read for statements answering a
 * `body` column (what a scan of whole rows costs), once their cursors are read.
 */
function countingBodies(sql: SqlStorage): { sql: SqlStorage; bodyRows: () => number } {
  const cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
  const counting = new Proxy(sql, {
    get(target, prop) {
      if (prop === "exec") {
        return (query: string, ...args: SqlStorageValue[]) => {
          const cursor = target.exec(query, ...args);
          if (cursor.columnNames.includes("body")) cursors.push(cursor);
          return cursor;
        };
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { sql: counting, bodyRows: () => cursors.reduce((n, c) => n + c.rowsRead, 0) };
}

/** The gateway's raw answer (headers included). */
async function fetchRaw(path: string, headers: Record<string, string>): Promise<Response> {
  const { exports } = await import("cloudflare:workers");
  return exports.default.fetch(new Request(`http://edgemq.test${path}`, { headers }));
}
