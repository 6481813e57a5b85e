/**
 * An unbounded topic's batch is written with a few statements (see
 * src/broker/store/bulk-writer.ts): what is pulled back must be exactly what was
 * sent, and dedup must still see the batch's own earlier messages.
 */
import { describe, expect, it } from "vitest";
import { api, createTopic } from "./helpers.ts";

const tricky = [
  "plain",
  'quote " and \\ backslash',
  "nul \u0000 inside",
  "line\u2028sep\ttab\n",
  "emoji 🦀 and é",
  "",
];

describe("batch append", () => {
  it("stores every field of every message exactly as sent", async () => {
    const topic = await createTopic({ queues: 1 });
    const messages = Array.from({ length: 300 }, (_, i) => ({
      body: `${tricky[i % tricky.length]}#${i}`,
      tag: i % 3 ? `Tag${i % 3}` : undefined,
      keys: i % 2 ? [`k${i}`, "shared", "shared"] : undefined,
      properties: i % 4 ? { n: String(i), text: tricky[(i + 1) % tricky.length]! } : undefined,
      shardingKey: i % 5 ? `s${i % 5}` : undefined,
      priority: i % 10,
      expireAt: i % 7 ? undefined : Date.now() + 3_600_000 + i,
    }));
    messages.push({ body: "aGVsbG8=", encoding: "base64" } as never);
    const sent = await api("POST", `/v1/topics/${topic}/messages?queue=0`, { messages });
    expect(sent.status).toBe(200);
    expect(sent.body.results.map((r: { offset: number }) => r.offset)).toEqual(
      messages.map((_, i) => i),
    );
    const pulled = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0&max=1000`);
    expect(pulled.body.messages).toHaveLength(messages.length);
    pulled.body.messages.forEach((m: Record<string, unknown>, i: number) => {
      const want = messages[i]! as Record<string, unknown>;
      expect(m.body).toBe(want.body);
      expect(m.tag).toBe(want.tag);
      expect(m.keys).toEqual(want.keys);
      expect(m.properties).toEqual(want.properties);
      expect(m.shardingKey).toBe(want.shardingKey);
      expect(m.priority).toBe(want.priority ?? 4);
      expect(m.expireAt).toBe(want.expireAt);
      expect(m.encoding).toBe(want.encoding ?? "utf8");
      expect(m.msgId).toBe(sent.body.results[i].msgId);
      expect(m.storedAt).toBe(sent.body.results[i].storedAt);
    });
    const byKey = await api("GET", `/v1/topics/${topic}/messages?key=shared&limit=1000`);
    expect(byKey.body.messages).toHaveLength(150);
    const byId = await api("GET", `/v1/topics/${topic}/messages/${sent.body.results[7].msgId}`);
    expect(byId.body).toMatchObject({ offset: 7, body: messages[7]!.body });
  });

  it("stores a message too large for a chunk alongside small ones", async () => {
    const topic = await createTopic({ queues: 1 });
    const big = "\u0001".repeat(200_000) + "x".repeat(500_000);
    const r = await api("POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [{ body: "a" }, { body: big, keys: ["big"] }, { body: "b" }],
    });
    expect(r.status).toBe(200);
    const pulled = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0&max=10`);
    expect(pulled.body.messages.map((m: { body: string }) => m.body.length)).toEqual([
      1,
      big.length,
      1,
    ]);
    expect(pulled.body.messages[1].body).toBe(big);
    expect((await api("GET", `/v1/topics/${topic}/messages?key=big`)).body.messages[0].offset).toBe(
      1,
    );
  });

  it("answers a msgId repeated inside one batch as a duplicate of its first copy", async () => {
    const topic = await createTopic({ queues: 1 });
    const r = await api("POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [
        { body: "first", msgId: "same" },
        { body: "other", msgId: "different" },
        { body: "second", msgId: "same" },
        { body: "later", msgId: "later", deliverAt: Date.now() + 60_000 },
        { body: "later again", msgId: "later" },
      ],
    });
    expect(
      r.body.results.map((x: { status: string; offset: number | null }) => [x.status, x.offset]),
    ).toEqual([
      ["stored", 0],
      ["stored", 1],
      ["duplicate", 0],
      ["scheduled", null],
      ["duplicate", null],
    ]);
    const again = await api("POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [
        { body: "retry", msgId: "different" },
        { body: "new", msgId: "new" },
      ],
    });
    expect(
      again.body.results.map((x: { status: string; offset: number | null }) => [
        x.status,
        x.offset,
      ]),
    ).toEqual([
      ["duplicate", 1],
      ["stored", 2],
    ]);
  });
});
