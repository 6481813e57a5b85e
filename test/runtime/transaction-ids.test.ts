/**
 * Transaction ids are unguessable and bound to their sender (issue 16, item
 * 2): a txId carries 128 random bits besides its address; only its sender's
 * space (or the admin) may end or see it, and everyone else, like a guess,
 * gets TRANSACTION_NOT_FOUND. Open transactions from before keep their old
 * txIds.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { SHARD_MIGRATIONS } from "../../src/broker/store/schema.ts";
import { TX_SECRET_BYTES, parseTxId } from "../../src/protocol/ids.ts";
import { migrate } from "../../src/storage/migrations.ts";
import { api, createTopic, shardStub, unique } from "./helpers.ts";
import { rewindShardSchema } from "./storage-sql.ts";
import { bearer, expectError, mint } from "./token-helpers.ts";

type Headers = Record<string, string> | undefined;

async function prepare(topic: string, body: string, headers?: Headers, msgId?: string) {
  const message = msgId === undefined ? { body } : { body, msgId };
  const r = await api(
    "POST",
    `/v1/topics/${topic}/transactions`,
    { message, producerGroup: "pg-ids" },
    headers,
  );
  expect(r.status).toBe(200);
  return r.body as { txId: string; msgId: string };
}

const end = (txId: string, how: "commit" | "rollback", headers?: Headers) =>
  api("POST", `/v1/transactions/${encodeURIComponent(txId)}/${how}`, undefined, headers);

const state = (txId: string, headers?: Headers) =>
  api("GET", `/v1/transactions/${encodeURIComponent(txId)}`, undefined, headers);

const bodies = async (topic: string) =>
  (await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0`)).body.messages.map(
    (m: { body: string }) => m.body,
  );

/** Decoded bytes of a base64url string. */
const bytes = (s: string) => atob(s.replace(/-/g, "+").replace(/_/g, "/")).length;

async function twoProducers(topic: string) {
  // Both may name the producer group (issue 16, item 4): only the sender decides here.
  const alice = bearer(
    await mint({ sub: unique("alice"), publish: [topic], producerGroups: ["pg-ids"] }),
  );
  const bob = bearer(
    await mint({ sub: unique("bob"), publish: [topic], producerGroups: ["pg-ids"] }),
  );
  return { alice, bob };
}

describe("transaction ids", () => {
  it("carry at least 96 random bits besides their address, different for each transaction", async () => {
    const topic = await createTopic({ queues: 1 });
    const txIds = await Promise.all(Array.from({ length: 5 }, (_, i) => prepare(topic, `m${i}`)));
    const secrets = txIds.map(({ txId }) => parseTxId(txId).secret!);
    for (const s of secrets) expect(bytes(s)).toBeGreaterThanOrEqual(12);
    expect(TX_SECRET_BYTES * 8).toBeGreaterThanOrEqual(96);
    expect(new Set(secrets).size).toBe(5);
  });

  it("cannot be guessed from the address: a near or old-style id ends nothing", async () => {
    const topic = await createTopic({ queues: 1 });
    const { txId } = await prepare(topic, "kept");
    const { queue, id, secret } = parseTxId(txId);
    const other = secret!.startsWith("A") ? `B${secret!.slice(1)}` : `A${secret!.slice(1)}`;
    for (const guess of [
      `t1.${topic}.${queue}.${id}`,
      `t2.${topic}.${queue}.${id}.${other}`,
      `t2.${topic}.${queue}.${id + 1}.${secret}`,
    ]) {
      expectError(await end(guess, "rollback"), 404, "TRANSACTION_NOT_FOUND");
      expectError(await state(guess), 404, "TRANSACTION_NOT_FOUND");
    }
    expect((await end(txId, "commit")).body).toEqual({ status: "committed" });
    expect(await bodies(topic)).toEqual(["kept"]);
  });

  it("answer another sender TRANSACTION_NOT_FOUND even when it holds the txId, and the owner's commit stands", async () => {
    const topic = await createTopic({ queues: 1 });
    const { alice, bob } = await twoProducers(topic);
    const { txId } = await prepare(topic, "alice's", alice);
    expectError(await end(txId, "rollback", bob), 404, "TRANSACTION_NOT_FOUND");
    expectError(await state(txId, bob), 404, "TRANSACTION_NOT_FOUND");
    expect((await state(txId, alice)).body.status).toBe("open");
    expect((await end(txId, "commit", alice)).body).toEqual({ status: "committed" });
    // Once ended, still nothing to see for another sender: no TRANSACTION_ENDED oracle.
    expectError(await end(txId, "rollback", bob), 404, "TRANSACTION_NOT_FOUND");
    expect(await bodies(topic)).toEqual(["alice's"]);
  });

  it("may be ended by the admin whoever opened them", async () => {
    const topic = await createTopic({ queues: 1 });
    const { alice } = await twoProducers(topic);
    const { txId } = await prepare(topic, "ended by admin", alice);
    expect((await end(txId, "rollback")).body).toEqual({ status: "rolledBack" });
    expectError(await end(txId, "commit", alice), 409, "TRANSACTION_ENDED");
  });

  it("commit their message into the sender's msgId space", async () => {
    const topic = await createTopic({ queues: 1 });
    const { alice, bob } = await twoProducers(topic);
    const { txId } = await prepare(topic, "tx", alice, "tx-msg");
    await end(txId, "commit", alice);
    const send = (h: Headers) =>
      api(
        "POST",
        `/v1/topics/${topic}/messages`,
        { messages: [{ body: "again", msgId: "tx-msg" }] },
        h,
      );
    expect((await send(alice)).body.results[0]).toMatchObject({ status: "duplicate", offset: 0 });
    expect((await send(bob)).body.results[0]).toMatchObject({ status: "stored", offset: 1 });
  });
});

describe("transactions opened before txIds had secrets", () => {
  it("stay committable by their old txId after the schema step, by whoever holds it", async () => {
    const topic = await createTopic({ queues: 1 });
    const { alice } = await twoProducers(topic);
    const { txId: ended } = await prepare(topic, "old, rolled back");
    await end(ended, "rollback");
    const { txId } = await prepare(topic, "old, open", alice);
    // The database as version 1 wrote it: half messages without sender or secret.
    await rewindShardSchema(topic, 0, 1);
    await runInDurableObject(shardStub(topic, 0), (_i, s) => {
      s.storage.transactionSync(() => migrate(s.storage.sql, SHARD_MIGRATIONS, Date.now()));
    });
    const { id, queue } = parseTxId(txId);
    const old = `t1.${topic}.${queue}.${id}`;
    // The new-style txId names no secret the row has.
    expectError(await end(txId, "commit", alice), 404, "TRANSACTION_NOT_FOUND");
    expect((await state(old, alice)).body).toMatchObject({ txId: old, status: "open" });
    expect((await end(old, "commit", alice)).body).toEqual({ status: "committed" });
    expect(await bodies(topic)).toEqual(["old, open"]);
    const listed = await api("GET", `/v1/topics/${topic}/transactions`);
    expect(listed.body.transactions).toEqual([]);
  });

  it("are listed for the admin with the txId that ends them", async () => {
    const topic = await createTopic({ queues: 1 });
    const { txId } = await prepare(topic, "listed");
    await rewindShardSchema(topic, 0, 1);
    await runInDurableObject(shardStub(topic, 0), (_i, s) => {
      s.storage.transactionSync(() => migrate(s.storage.sql, SHARD_MIGRATIONS, Date.now()));
    });
    const fresh = await prepare(topic, "new");
    const listed = await api("GET", `/v1/topics/${topic}/transactions`);
    const { id, queue } = parseTxId(txId);
    expect(listed.body.transactions.map((t: { txId: string }) => t.txId)).toEqual([
      `t1.${topic}.${queue}.${id}`,
      fresh.txId,
    ]);
    for (const t of listed.body.transactions as { txId: string }[]) {
      expect((await end(t.txId, "rollback")).status).toBe(200);
    }
  });
});
