/**
 * Configs arrive at shards from many gateway isolates, some holding an older
 * copy for up to 30 s: a shard takes only a newer topic config or group
 * snapshot, so settings never flip back to an older version.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { GroupConfig, TopicConfig } from "../../src/protocol/types.ts";
import { api, createTopic, shardStub, unique } from "./helpers.ts";
import { makeDue } from "./storage-sql.ts";

const send = (topic: string, body: string) =>
  api("POST", `/v1/topics/${topic}/messages?queue=0`, { messages: [{ body }] });

describe("config order at the shard", () => {
  it("keeps a newer topic config when an older one arrives late", async () => {
    const topic = await createTopic({ queues: 1 });
    const older = (await api("GET", `/v1/topics/${topic}`)).body as TopicConfig;
    const bounded = await api("PUT", `/v1/topics/${topic}`, {
      maxBacklogMessages: 1,
      overflowPolicy: "reject",
    });
    expect(bounded.body.updatedAt).toBeGreaterThan(older.updatedAt);
    // A gateway that read the registry before the update fans its copy out last.
    const { queueStats: _q, groups: _g, ...stale } = older as TopicConfig & Record<string, unknown>;
    expect((await shardStub(topic, 0).configure(stale as TopicConfig, 0)).ok).toBe(true);
    expect((await send(topic, "first")).status).toBe(200);
    const second = await send(topic, "second");
    expect(second.status).toBe(507);
    expect(second.body.error.code).toBe("QUEUE_FULL");
  });

  it("gives two updates in one millisecond distinct, increasing update times", async () => {
    const topic = await createTopic({ queues: 1 });
    const a = await api("PUT", `/v1/topics/${topic}`, { retentionMs: 5000 });
    const b = await api("PUT", `/v1/topics/${topic}`, { retentionMs: 6000 });
    expect(b.body.updatedAt).toBeGreaterThan(a.body.updatedAt);
    const group = unique("g");
    const g1 = await api("PUT", `/v1/groups/${group}`, { maxReconsumeTimes: 3 });
    const g2 = await api("PUT", `/v1/groups/${group}`, { maxReconsumeTimes: 4 });
    expect(g2.body.updatedAt).toBeGreaterThan(g1.body.updatedAt);
  });

  it("keeps a newer group snapshot when a receive brings an older one", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    const older = (await api("PUT", `/v1/groups/${group}`, { maxReconsumeTimes: 16 }))
      .body as GroupConfig;
    const newer = (await api("PUT", `/v1/groups/${group}`, { maxReconsumeTimes: 0 }))
      .body as GroupConfig;
    expect((await send(topic, "once")).status).toBe(200);
    expect((await send(topic, "twice")).status).toBe(200);
    // A receive through an isolate with the newer config, then one through an isolate still caching the older.
    expect(newer.maxReconsumeTimes).toBe(0);
    const first = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 1 });
    expect(first.body.messages).toHaveLength(1);
    const stub = shardStub(topic, 0);
    const { topics: _t, ...stale } = older as GroupConfig & Record<string, unknown>;
    const second = await stub.receive(stale as GroupConfig, 1, 30_000);
    expect(second.ok && second.value).toHaveLength(1);
    // The alarm, which has no request, lapses both receipts with the newer snapshot: no retry left.
    expect(await makeDue(topic, 0, group)).toBeGreaterThan(0);
    await runDurableObjectAlarm(stub);
    const dlq = await api("GET", `/v1/groups/${group}/dlq/messages`);
    expect(dlq.body.messages.map((m: { body: string }) => m.body)).toEqual(["once", "twice"]);
  });
});
