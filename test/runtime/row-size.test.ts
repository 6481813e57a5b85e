/**
 * SQLite on Cloudflare holds at most 2 MB (UTF-8 bytes) in one value or row,
 * and local workerd is looser, so these tests look at what the shard writes:
 * no statement value and no stored row may pass the platform's limit. A
 * message whose stored form would is refused with MESSAGE_TOO_LARGE and
 * nothing of its batch is stored.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { openShardStore } from "../../src/broker/store/index.ts";
import { compileFilter } from "../../src/protocol/filter.ts";
import { Limits } from "../../src/protocol/limits.ts";
import { parseSend } from "../../src/protocol/requests/send.ts";
import { api, createTopic, shardStub } from "./helpers.ts";
import { countRows } from "./storage-sql.ts";

const utf8 = (s: string) => new TextEncoder().encode(s).byteLength;

/** The real SQL handle, recording the largest string value any statement was given. */
function observed(sql: SqlStorage): { sql: SqlStorage; largest: () => number } {
  let largest = 0;
  const exec = (query: string, ...args: SqlStorageValue[]) => {
    for (const a of args) if (typeof a === "string") largest = Math.max(largest, utf8(a));
    return sql.exec(query, ...args);
  };
  const proxy = new Proxy(sql, {
    get: (target, key) => (key === "exec" ? exec : Reflect.get(target, key, target)),
  });
  return { sql: proxy, largest: () => largest };
}

describe("rows within the platform's 2 MB", () => {
  it("writes a batch of CJK text in statements whose values stay under 2 MB of UTF-8", async () => {
    const topic = await createTopic({ queues: 1 });
    // 340 000 characters of three UTF-8 bytes each: 1.02 MB per body, under maxMessageBytes.
    const bodies = ["漢", "字", "テ", "ス"].map((c) => c.repeat(340_000));
    const { messages } = parseSend({ messages: bodies.map((body) => ({ body })) }, Date.now(), () =>
      crypto.randomUUID(),
    );
    await runInDurableObject(shardStub(topic, 0), (_i, state) => {
      const o = observed(state.storage.sql);
      const store = openShardStore(o.sql, (fn) => state.storage.transactionSync(fn));
      state.storage.transactionSync(() => store.log.append(messages, Date.now(), null));
      expect(o.largest()).toBeGreaterThan(1_000_000);
      expect(o.largest()).toBeLessThanOrEqual(Limits.maxRowBytes);
      const back = store.log.pull(0, 10, compileFilter(undefined), Date.now());
      expect(back.messages.map((m) => m.body)).toEqual(bodies);
    });
  });

  it("refuses a scheduled message whose JSON row would pass 2 MB, and stores nothing of its batch", async () => {
    const topic = await createTopic({ queues: 1 });
    // 1 MB of quotes: within maxMessageBytes, but escaped to 2 MB in the timer row's JSON.
    const quotes = '"'.repeat(1_000_000);
    const r = await api("POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [{ body: "fine" }, { body: quotes, delayMs: 60_000 }],
    });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("MESSAGE_TOO_LARGE");
    expect(r.body.error.message).toMatch(/^messages\[1\]: /);
    expect(r.body.error.index).toBe(1);
    expect(await countRows(topic, "scheduled")).toBe(0);
    expect(await countRows(topic, "log")).toBe(0);
    // The same body sent for delivery now is stored: its log row holds the body as it is.
    const now = await api("POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [{ body: quotes }],
    });
    expect(now.status).toBe(200);
  });

  it("refuses a half message whose JSON row would pass 2 MB", async () => {
    const topic = await createTopic({ queues: 1 });
    const r = await api("POST", `/v1/topics/${topic}/transactions`, {
      message: { body: "\u0001".repeat(400_000) },
      producerGroup: "pg",
    });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("MESSAGE_TOO_LARGE");
    expect(await countRows(topic, "half")).toBe(0);
  });

  it("still schedules the largest ASCII message the topic allows", async () => {
    const topic = await createTopic({ queues: 1 });
    const r = await api("POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [{ body: "x".repeat(Limits.maxMessageBytesCeiling), delayMs: 60_000 }],
    });
    expect(r.status).toBe(200);
    expect(r.body.results[0].status).toBe("scheduled");
  });
});
