/**
 * Versioned schemas: a shard's and the registry's databases record the steps
 * applied to them; opening one applies the missing steps in order, all or
 * none; a database from before versions existed is recognised as version 1
 * with its data intact; a database newer than the code is refused.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { SHARD_MIGRATIONS } from "../../src/broker/store/schema.ts";
import { REGISTRY_MIGRATIONS } from "../../src/registry/schema.ts";
import { type Migration, migrate, schemaVersion } from "../../src/storage/migrations.ts";
import { api, createTopic, shardStub } from "./helpers.ts";
import { rewindShardSchema, storedTrace } from "./storage-sql.ts";

const registryStub = () => env.REGISTRY.get(env.REGISTRY.idFromName("registry"));

describe("schema versions", () => {
  it("opens a new shard at the latest shard schema version", async () => {
    const topic = await createTopic({ queues: 1 });
    await runInDurableObject(shardStub(topic, 0), (_i, state) => {
      expect(schemaVersion(state.storage.sql)).toBe(SHARD_MIGRATIONS.length);
    });
  });

  it("recognises a shard database from before versions as version 1 and keeps its messages", async () => {
    const topic = await createTopic({ queues: 1 });
    const sent = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "kept-1" }, { body: "kept-2", keys: ["k"] }],
    });
    expect(sent.status).toBe(200);
    // What a database written before 2026-12-02 looks like: step 1's tables, no version record.
    await rewindShardSchema(topic, 0, 1);
    await runInDurableObject(shardStub(topic, 0), (_i, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE schema_migrations");
      expect(schemaVersion(sql)).toBe(0);
      const outcome = state.storage.transactionSync(() =>
        migrate(sql, SHARD_MIGRATIONS, Date.now()),
      );
      expect(outcome).toEqual({ from: 0, to: SHARD_MIGRATIONS.length });
    });
    const r = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0`);
    expect(r.body.messages.map((m: { body: string }) => m.body)).toEqual(["kept-1", "kept-2"]);
    const byKey = await api("GET", `/v1/topics/${topic}/messages?key=k`);
    expect(byKey.body.messages).toHaveLength(1);
  });

  it("takes a version-2 shard to version 3: open half messages' counters backfilled, the new table and index made", async () => {
    const topic = await createTopic({ queues: 1 });
    for (const body of ["half-one", "half-two"]) {
      const r = await api("POST", `/v1/topics/${topic}/transactions`, {
        message: { body },
        producerGroup: "pg-migrate",
      });
      expect(r.status).toBe(200);
    }
    // A version-2 database: no half counters, no parked table, no age index.
    await rewindShardSchema(topic, 0, 2);
    await runInDurableObject(shardStub(topic, 0), (_i, state) => {
      const sql = state.storage.sql;
      expect(schemaVersion(sql)).toBe(2);
      const outcome = state.storage.transactionSync(() =>
        migrate(sql, SHARD_MIGRATIONS, Date.now()),
      );
      expect(outcome).toEqual({ from: 2, to: SHARD_MIGRATIONS.length });
      const meta = Object.fromEntries(
        sql
          .exec<{ k: string; v: number }>(
            "SELECT k, v FROM meta WHERE k IN ('half_open', 'half_bytes')",
          )
          .toArray()
          .map((r) => [r.k, r.v]),
      );
      expect(meta).toEqual({ half_open: 2, half_bytes: "half-one".length + "half-two".length });
      expect(sql.exec("SELECT count(*) AS n FROM parked").one().n).toBe(0);
      const index = sql
        .exec("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'half_open_by_age'")
        .toArray();
      expect(index).toHaveLength(1);
    });
  });

  it("brings a version-3 shard to step 4 (trace columns, push table) with its messages intact", async () => {
    const topic = await createTopic({ queues: 1 });
    const sent = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "from v1", keys: ["k1"] }],
    });
    expect(sent.status).toBe(200);
    await rewindShardSchema(topic, 0, 3);
    await runInDurableObject(shardStub(topic, 0), (_i, state) => {
      const sql = state.storage.sql;
      expect(schemaVersion(sql)).toBe(3);
      const outcome = state.storage.transactionSync(() =>
        migrate(sql, SHARD_MIGRATIONS, Date.now()),
      );
      expect(outcome).toEqual({ from: 3, to: SHARD_MIGRATIONS.length });
    });
    // The old row reads with no trace context; a new one stores its own.
    expect(await storedTrace(topic, 0)).toEqual({ traceparent: null, tracestate: null });
    const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const traced = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "after", traceparent: tp }],
    });
    expect(traced.status).toBe(200);
    const r = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0`);
    expect(r.body.messages.map((m: { body: string }) => m.body)).toEqual(["from v1", "after"]);
    expect(r.body.messages[0]).not.toHaveProperty("traceparent");
    expect(r.body.messages[1].traceparent).toBe(tp);
    // The push table is there: a subscription installs on the migrated shard.
    const put = await api("PUT", `/v1/push/${topic}-hook`, {
      topic,
      url: "http://127.0.0.1:9/unused",
      paused: true,
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
  });

  it("recognises a registry database from before versions and keeps its topics", async () => {
    const topic = await createTopic({ queues: 2 });
    await runInDurableObject(registryStub(), (_i, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE schema_migrations");
      const outcome = state.storage.transactionSync(() =>
        migrate(sql, REGISTRY_MIGRATIONS, Date.now()),
      );
      expect(outcome.to).toBe(REGISTRY_MIGRATIONS.length);
    });
    const r = await api("GET", `/v1/topics/${topic}`);
    expect(r.status).toBe(200);
    expect(r.body.queues).toBe(2);
  });

  describe("the migrator", () => {
    // Steps over tables of their own, in a shard's database, recorded in a table of their own.
    const steps = (table: string): Migration[] => [
      {
        version: 1,
        name: "create",
        up: `CREATE TABLE ${table}_t (id INTEGER PRIMARY KEY, a TEXT)`,
      },
      { version: 2, name: "add b", up: `ALTER TABLE ${table}_t ADD COLUMN b INTEGER` },
      {
        version: 3,
        name: "backfill b",
        up: (sql) => sql.exec(`UPDATE ${table}_t SET b = length(a)`),
      },
    ];

    it("applies only the missing steps, in order, and records each once", async () => {
      const topic = await createTopic({ queues: 1 });
      await runInDurableObject(shardStub(topic, 0), (_i, state) => {
        const sql = state.storage.sql;
        const all = steps("m1");
        expect(migrate(sql, all.slice(0, 2), 1, "m1_versions")).toEqual({ from: 0, to: 2 });
        sql.exec("INSERT INTO m1_t (a) VALUES ('hello')");
        expect(migrate(sql, all, 2, "m1_versions")).toEqual({ from: 2, to: 3 });
        expect(migrate(sql, all, 3, "m1_versions")).toEqual({ from: 3, to: 3 });
        expect(sql.exec<{ b: number }>("SELECT b FROM m1_t").one().b).toBe(5);
        const applied = sql
          .exec<{ version: number; applied_at: number }>(
            "SELECT version, applied_at FROM m1_versions ORDER BY version",
          )
          .toArray();
        expect(applied).toEqual([
          { version: 1, applied_at: 1 },
          { version: 2, applied_at: 1 },
          { version: 3, applied_at: 2 },
        ]);
      });
    });

    it("leaves the database at its old version, whole, when a step fails", async () => {
      const topic = await createTopic({ queues: 1 });
      await runInDurableObject(shardStub(topic, 0), (_i, state) => {
        const sql = state.storage.sql;
        const ok = steps("m2");
        state.storage.transactionSync(() => migrate(sql, ok.slice(0, 1), 1, "m2_versions"));
        const failing: Migration[] = [
          ...ok.slice(0, 1),
          { version: 2, name: "half done", up: "CREATE TABLE m2_extra (x); SELECT no_such_fn()" },
        ];
        expect(() =>
          state.storage.transactionSync(() => migrate(sql, failing, 2, "m2_versions")),
        ).toThrow(/no such function/);
        expect(schemaVersion(sql, "m2_versions")).toBe(1);
        const extra = sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'm2_extra'").toArray();
        expect(extra).toHaveLength(0);
      });
    });

    it("refuses a database newer than the code", async () => {
      const topic = await createTopic({ queues: 1 });
      await runInDurableObject(shardStub(topic, 0), (_i, state) => {
        const sql = state.storage.sql;
        migrate(sql, steps("m3"), 1, "m3_versions");
        expect(() => migrate(sql, steps("m3").slice(0, 2), 2, "m3_versions")).toThrow(
          /newer than this code/,
        );
      });
    });

    it("rejects steps that are not numbered 1, 2, 3, …", async () => {
      const topic = await createTopic({ queues: 1 });
      await runInDurableObject(shardStub(topic, 0), (_i, state) => {
        const bad = [steps("m4")[1]!];
        expect(() => migrate(state.storage.sql, bad, 1, "m4_versions")).toThrow(/expected 1/);
      });
    });
  });
});
