/**
 * Dedup is per sender (api.md, "Dedup is per sender"; issue 16, item 1): a
 * scoped token's msgIds live in its subject's own space, the admin token and
 * Service Bindings share one, and query and recall by msgId act within the
 * caller's space for scoped tokens while the admin sees every sender's.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { unwrap } from "../../src/broker/outcome.ts";
import { SHARD_MIGRATIONS } from "../../src/broker/store/schema.ts";
import { migrate } from "../../src/storage/migrations.ts";
import { api, createTopic, shardStub, unique } from "./helpers.ts";
import { passTimeForScheduled, rewindShardSchema } from "./storage-sql.ts";
import { bearer, expectError, mint } from "./token-helpers.ts";

const send = (topic: string, messages: unknown[], headers?: Record<string, string>) =>
  api("POST", `/v1/topics/${topic}/messages`, { messages }, headers);

const bodies = async (topic: string) =>
  (await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0&max=100`)).body.messages.map(
    (m: { body: string }) => m.body,
  );

/** Two publishers of one topic with their own subjects. */
async function twoSenders(topic: string) {
  const alice = bearer(await mint({ sub: unique("alice"), publish: [topic] }));
  const bob = bearer(await mint({ sub: unique("bob"), publish: [topic] }));
  return { alice, bob };
}

describe("dedup per sender", () => {
  it("stores another sender's equal msgId instead of answering it the first sender's copy", async () => {
    const topic = await createTopic({ queues: 1 });
    const { alice, bob } = await twoSenders(topic);
    const a = await send(topic, [{ body: "from alice", msgId: "order-1" }], alice);
    const b = await send(topic, [{ body: "from bob", msgId: "order-1" }], bob);
    expect(a.body.results[0]).toMatchObject({ status: "stored", offset: 0 });
    expect(b.body.results[0]).toMatchObject({ status: "stored", offset: 1 });
    // Consumers read each sender's own body.
    expect(await bodies(topic)).toEqual(["from alice", "from bob"]);
  });

  it("answers a sender retrying its own msgId duplicate, with the first copy's address", async () => {
    const topic = await createTopic({ queues: 1 });
    const { alice, bob } = await twoSenders(topic);
    await send(topic, [{ body: "a1", msgId: "m" }], alice);
    await send(topic, [{ body: "b1", msgId: "m" }], bob);
    const again = await send(topic, [{ body: "a2", msgId: "m" }], alice);
    expect(again.body.results[0]).toMatchObject({ status: "duplicate", offset: 0 });
    const bobAgain = await send(topic, [{ body: "b2", msgId: "m" }], bob);
    expect(bobAgain.body.results[0]).toMatchObject({ status: "duplicate", offset: 1 });
    expect(await bodies(topic)).toEqual(["a1", "b1"]);
  });

  it("shares one space among the tokens of one subject", async () => {
    const topic = await createTopic({ queues: 1 });
    const sub = unique("web");
    const first = bearer(await mint({ sub, publish: [topic] }));
    const second = bearer(await mint({ sub, publish: [topic], ttlSeconds: 60 }));
    await send(topic, [{ body: "once", msgId: "retry-me" }], first);
    const r = await send(topic, [{ body: "once", msgId: "retry-me" }], second);
    expect(r.body.results[0].status).toBe("duplicate");
  });

  it("keeps the admin token's space apart from scoped senders' in both directions", async () => {
    const topic = await createTopic({ queues: 1 });
    const { alice } = await twoSenders(topic);
    await send(topic, [{ body: "admin", msgId: "shared" }]);
    const a = await send(topic, [{ body: "alice", msgId: "shared" }], alice);
    expect(a.body.results[0].status).toBe("stored");
    await send(topic, [{ body: "alice only", msgId: "alice-first" }], alice);
    const admin = await send(topic, [{ body: "admin later", msgId: "alice-first" }]);
    expect(admin.body.results[0].status).toBe("stored");
    expect((await send(topic, [{ body: "x", msgId: "shared" }])).body.results[0].status).toBe(
      "duplicate",
    );
  });

  it("gives Service Binding callers the admin token's space", async () => {
    const topic = await createTopic({ queues: 1 });
    const msgId = unique("sb");
    const [viaBinding] = await env.BINDING_WORKER.produce([{ topic, body: "binding", msgId }]);
    expect(viaBinding).toMatchObject({ status: "stored", offset: 0 });
    const viaAdmin = await send(topic, [{ body: "admin", msgId }]);
    expect(viaAdmin.body.results[0]).toMatchObject({ status: "duplicate", offset: 0 });
  });

  it("dedups a scheduled message within its sender's space once it is due", async () => {
    const topic = await createTopic({ queues: 1 });
    const { alice, bob } = await twoSenders(topic);
    const later = await send(topic, [{ body: "later", msgId: "sched", delayMs: 60_000 }], alice);
    expect(later.body.results[0].status).toBe("scheduled");
    expect((await send(topic, [{ body: "bob", msgId: "sched" }], bob)).body.results[0].status).toBe(
      "stored",
    );
    await passTimeForScheduled(topic, 120_000);
    await runDurableObjectAlarm(shardStub(topic, 0));
    expect(await bodies(topic)).toEqual(["bob", "later"]);
    const retry = await send(topic, [{ body: "later", msgId: "sched" }], alice);
    expect(retry.body.results[0]).toMatchObject({ status: "duplicate", offset: 1 });
  });
});

describe("query and recall by msgId, per sender", () => {
  it("lets a scoped token recall only its own scheduled message", async () => {
    const topic = await createTopic({ queues: 1 });
    const { alice, bob } = await twoSenders(topic);
    await send(topic, [{ body: "alice's", msgId: "r-1", delayMs: 60_000 }], alice);
    const byBob = await api("DELETE", `/v1/topics/${topic}/messages/r-1`, undefined, bob);
    expectError(byBob, 404, "MESSAGE_NOT_FOUND");
    const stats = await api("GET", `/v1/topics/${topic}`);
    expect(stats.body.queueStats[0].scheduled).toBe(1);
    const byAlice = await api("DELETE", `/v1/topics/${topic}/messages/r-1`, undefined, alice);
    expect(byAlice.status).toBe(200);
    expect((await api("GET", `/v1/topics/${topic}`)).body.queueStats[0].scheduled).toBe(0);
  });

  it("lets the admin recall any sender's scheduled message", async () => {
    const topic = await createTopic({ queues: 2 });
    const { alice, bob } = await twoSenders(topic);
    await send(topic, [{ body: "a", msgId: "r-2", delayMs: 60_000 }], alice);
    await send(topic, [{ body: "b", msgId: "r-2", delayMs: 60_000 }], bob);
    const r = await api("DELETE", `/v1/topics/${topic}/messages/r-2`);
    expect(r.status).toBe(200);
    const stats = await api("GET", `/v1/topics/${topic}`);
    expect(stats.body.queueStats.map((q: { scheduled: number }) => q.scheduled)).toEqual([0, 0]);
  });

  it("answers a scoped recall of another sender's delivered message not found, not NOT_RECALLABLE", async () => {
    const topic = await createTopic({ queues: 1 });
    const { alice, bob } = await twoSenders(topic);
    await send(topic, [{ body: "now", msgId: "r-3" }], alice);
    const byBob = await api("DELETE", `/v1/topics/${topic}/messages/r-3`, undefined, bob);
    expectError(byBob, 404, "MESSAGE_NOT_FOUND");
    const byAlice = await api("DELETE", `/v1/topics/${topic}/messages/r-3`, undefined, alice);
    expectError(byAlice, 409, "NOT_RECALLABLE");
  });

  it("shows the admin a scoped sender's message by its msgId, its own space's first", async () => {
    const topic = await createTopic({ queues: 1 });
    const { alice } = await twoSenders(topic);
    await send(topic, [{ body: "alice's", msgId: "q-1" }], alice);
    const found = await api("GET", `/v1/topics/${topic}/messages/q-1`);
    expect(found.status).toBe(200);
    expect(found.body.body).toBe("alice's");
    await send(topic, [{ body: "admin's", msgId: "q-1" }]);
    expect((await api("GET", `/v1/topics/${topic}/messages/q-1`)).body.body).toBe("admin's");
  });
});

describe("a shard's lookup by msgId", () => {
  it("finds only a scoped sender's own message, and any sender's for the admin space", async () => {
    const topic = await createTopic({ queues: 1 });
    const aliceSub = unique("alice");
    const alice = bearer(await mint({ sub: aliceSub, publish: [topic] }));
    const bob = bearer(await mint({ sub: unique("bob"), publish: [topic] }));
    await send(topic, [{ body: "bob's", msgId: "only-bob" }], bob);
    await send(topic, [{ body: "alice's", msgId: "both" }], alice);
    await send(topic, [{ body: "bob's too", msgId: "both" }], bob);
    const find = async (msgId: string, sender: string | null) =>
      unwrap(await shardStub(topic, 0).findById(msgId, sender))?.body ?? null;
    expect(await find("only-bob", aliceSub)).toBeNull();
    expect(await find("both", aliceSub)).toBe("alice's");
    expect(await find("only-bob", null)).toBe("bob's");
    expect(await find("both", null)).toBe("alice's");
  });
});

describe("msgIds stored before spaces", () => {
  it("keep deduplicating for the admin space after the schema step, and shadow no scoped sender", async () => {
    const topic = await createTopic({ queues: 1 });
    const { alice } = await twoSenders(topic);
    await send(topic, [{ body: "old", msgId: "before-v2" }]);
    await send(topic, [{ body: "old later", msgId: "old-later", delayMs: 60_000 }]);
    // The database as version 1 wrote it: one msgId index, no senders.
    await rewindShardSchema(topic, 0, 1);
    await runInDurableObject(shardStub(topic, 0), (_i, state) => {
      const outcome = state.storage.transactionSync(() =>
        migrate(state.storage.sql, SHARD_MIGRATIONS, Date.now()),
      );
      expect(outcome).toEqual({ from: 1, to: SHARD_MIGRATIONS.length });
    });
    const retry = await send(topic, [{ body: "again", msgId: "before-v2" }]);
    expect(retry.body.results[0]).toMatchObject({ status: "duplicate", offset: 0 });
    const scoped = await send(topic, [{ body: "alice", msgId: "before-v2" }], alice);
    expect(scoped.body.results[0].status).toBe("stored");
    // A message scheduled before the step is recalled by the admin, as before.
    expect((await api("DELETE", `/v1/topics/${topic}/messages/old-later`)).status).toBe(200);
    expect(await bodies(topic)).toEqual(["old", "alice"]);
  });
});
