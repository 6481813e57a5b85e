/**
 * Test-only access to the storage of shards and the registry: the one place
 * tests know table and column names. Each function says what it simulates
 * (time passing for some rows, a row a sweep removed) or what it reads; tests
 * assert through the API wherever the API can tell.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { QueueShard } from "../../src/broker/queue-shard.ts";
import { HalfState, PopState, UNSETTLED } from "../../src/broker/store/schema.ts";
import { shardStub } from "./helpers.ts";

/** Runs `fn` over a shard's SQL handle. */
function inShard<T>(topic: string, queue: number, fn: (sql: SqlStorage) => T): Promise<T> {
  return runInDurableObject(shardStub(topic, queue), (_instance, state) => fn(state.storage.sql));
}

/** The tables of a shard that tests count rows of. */
export type ShardTable =
  | "log"
  | "scheduled"
  | "inflight"
  | "dlq"
  | "half"
  | "ids"
  | "msg_key"
  | "parked";

/** Rows of a shard's table (optionally only rows in a pop state). */
export function countRows(
  topic: string,
  table: ShardTable,
  opts: { queue?: number; popState?: keyof typeof PopState; dueBy?: number } = {},
): Promise<number> {
  return inShard(topic, opts.queue ?? 0, (sql) => {
    if (opts.popState !== undefined) {
      return sql
        .exec<{ n: number }>(
          "SELECT count(*) AS n FROM inflight WHERE state = ?",
          PopState[opts.popState],
        )
        .one().n;
    }
    if (opts.dueBy !== undefined) {
      return sql
        .exec<{ n: number }>("SELECT count(*) AS n FROM scheduled WHERE due_at <= ?", opts.dueBy)
        .one().n;
    }
    return sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ${table}`).one().n;
  });
}

/** As if `ms` passed for every scheduled message of a queue: their due times move earlier. */
export function passTimeForScheduled(topic: string, ms: number, queue = 0): Promise<void> {
  return inShard(topic, queue, (sql) => {
    sql.exec("UPDATE scheduled SET due_at = due_at - ?", ms);
  });
}

/** As if `ms` passed for every receipt and retry of a queue (every group). */
export function passTimeForReceipts(topic: string, ms: number, queue = 0): Promise<void> {
  return inShard(topic, queue, (sql) => {
    sql.exec("UPDATE inflight SET visible_at = visible_at - ?", ms);
  });
}

/**
 * Makes a group's receipts lapse and its retries come due now on one queue,
 * without waiting. Answers the rows moved.
 */
export function makeDue(topic: string, queue: number, group: string): Promise<number> {
  return inShard(
    topic,
    queue,
    (sql) =>
      sql.exec(
        `UPDATE inflight SET visible_at = ? WHERE grp = ? AND ${UNSETTLED}`,
        Date.now() - 1,
        group,
      ).rowsWritten,
  );
}

/** The pop-state rows of a group on one queue, by offset (`state` as a PopState number). */
export function inflightRows(topic: string, queue: number, group: string) {
  return inShard(topic, queue, (sql) =>
    sql
      .exec<{ msg_offset: number; state: number; visible_at: number; deliveries: number }>(
        "SELECT msg_offset, state, visible_at, deliveries FROM inflight WHERE grp = ? ORDER BY msg_offset",
        group,
      )
      .toArray(),
  );
}

/**
 * As if `ms` passed since messages of a queue were stored: their store times
 * move earlier (only those below offset `below`, when given), and with `ids`
 * their msgId index rows too.
 */
export function ageStored(
  topic: string,
  ms: number,
  opts: { queue?: number; below?: number; ids?: boolean } = {},
): Promise<void> {
  return inShard(topic, opts.queue ?? 0, (sql) => {
    sql.exec(
      "UPDATE log SET stored_at = stored_at - ? WHERE msg_offset < ?",
      ms,
      opts.below ?? Number.MAX_SAFE_INTEGER,
    );
    if (opts.ids) sql.exec("UPDATE ids SET stored_at = stored_at - ?", ms);
  });
}

/** As if `ms` passed for every msgId of a queue's dedup index (the messages are not aged). */
export function ageMsgIds(topic: string, ms: number, queue = 0): Promise<void> {
  return inShard(topic, queue, (sql) => {
    sql.exec("UPDATE ids SET stored_at = stored_at - ?", ms);
  });
}

/** Gives the messages of a queue store times `base + offset × step`. */
export function spreadStoreTimes(
  topic: string,
  queue: number,
  base: number,
  step: number,
): Promise<void> {
  return inShard(topic, queue, (sql) => {
    sql.exec("UPDATE log SET stored_at = ? + msg_offset * ?", base, step);
  });
}

/** Sets the expiry time of a stored message (as if it had been sent with that expireAt). */
export function setStoredExpiry(topic: string, offset: number, at: number): Promise<void> {
  return inShard(topic, 0, (sql) => {
    sql.exec("UPDATE log SET expire_at = ? WHERE msg_offset = ?", at, offset);
  });
}

/** Sets the expiry time of every scheduled message of a queue. */
export function setScheduledExpiry(topic: string, at: number): Promise<void> {
  return inShard(topic, 0, (sql) => {
    sql.exec("UPDATE scheduled SET msg = json_set(msg, '$.expireAt', ?)", at);
  });
}

/** Makes every open transaction's next check-back due now. */
export function makeChecksDue(topic: string, queue = 0): Promise<void> {
  return inShard(topic, queue, (sql) => {
    sql.exec(`UPDATE half SET check_at = ? WHERE state = ${HalfState.open}`, Date.now() - 1);
  });
}

/** Removes every half message of a queue, as the sweep does a day after they ended. */
export function forgetHalfMessages(topic: string, queue = 0): Promise<void> {
  return inShard(topic, queue, (sql) => {
    sql.exec("DELETE FROM half");
  });
}

/** Counters as saved in a shard's `meta` table (not the in-memory ones). */
export function savedCounters(
  topic: string,
  keys: readonly string[],
  queue = 0,
): Promise<Record<string, number>> {
  return inShard(topic, queue, (sql) =>
    Object.fromEntries(
      sql
        .exec<{ k: string; v: number }>(
          "SELECT k, v FROM meta WHERE k IN (SELECT value FROM json_each(?))",
          JSON.stringify(keys),
        )
        .toArray()
        .map((r) => [r.k, r.v]),
    ),
  );
}

/** The key index of a queue: (key, offset) rows. */
export function keyIndex(topic: string, queue = 0) {
  return inShard(topic, queue, (sql) =>
    sql.exec<{ key: string; msg_offset: number }>("SELECT key, msg_offset FROM msg_key").toArray(),
  );
}

/** Makes a member's last heartbeat `ageMs` old (in the registry). */
export async function ageMember(group: string, clientId: string, ageMs: number): Promise<void> {
  const stub = env.REGISTRY.get(env.REGISTRY.idFromName("registry"));
  await runInDurableObject(stub, (_i, state) => {
    state.storage.sql.exec(
      "UPDATE member SET last_seen = ? WHERE grp = ? AND client_id = ?",
      Date.now() - ageMs,
      group,
      clientId,
    );
  });
}

/** As if `ms` passed for every half message of a queue: they were prepared that much earlier. */
export function ageHalfMessages(topic: string, ms: number, queue = 0): Promise<void> {
  return inShard(topic, queue, (sql) => {
    sql.exec("UPDATE half SET created_at = created_at - ?", ms);
  });
}

/** Makes the stored JSON of a queue's scheduled messages unreadable, as a bad row would be. */
export function breakScheduledRows(topic: string, queue = 0): Promise<number> {
  return inShard(topic, queue, (sql) => {
    return sql.exec("UPDATE scheduled SET msg = '{not json'").rowsWritten;
  });
}

/** Makes the stored JSON of a queue's open half messages unreadable, as a bad row would be. */
export function breakHalfMessages(topic: string, queue = 0): Promise<void> {
  return inShard(topic, queue, (sql) => {
    sql.exec(`UPDATE half SET msg = '{not json' WHERE state = ${HalfState.open}`);
  });
}

/** Makes every stored message of a queue a dead letter of `group` (as if each had used up its deliveries). */
export function deadLetterAll(topic: string, group: string, queue = 0): Promise<number> {
  return inShard(
    topic,
    queue,
    (sql) =>
      sql.exec(
        "INSERT OR IGNORE INTO dlq (grp, msg_offset, reconsume_times, moved_at) SELECT ?, msg_offset, 16, ? FROM log",
        group,
        Date.now() - 1,
      ).rowsWritten,
  );
}

/** Rows set aside from a queue's timer work (kind, reference, error). */
export function parkedRows(topic: string, queue = 0) {
  return inShard(topic, queue, (sql) =>
    sql
      .exec<{ kind: string; ref: number; payload: string | null; error: string }>(
        "SELECT kind, ref, payload, error FROM parked ORDER BY id",
      )
      .toArray(),
  );
}

/**
 * Runs `call` on a queue's shard object and counts a table's rows in the
 * same turn, before any timer the call set can run: what the call itself
 * left, with nothing done in the background yet.
 */
export function rowsLeftBy<T>(
  topic: string,
  table: ShardTable,
  call: (shard: QueueShard) => Promise<T>,
  queue = 0,
): Promise<{ result: T; rows: number }> {
  return runInDurableObject(shardStub(topic, queue), async (instance: QueueShard, state) => {
    const result = await call(instance);
    const rows = state.storage.sql
      .exec<{ n: number }>(`SELECT count(*) AS n FROM ${table}`)
      .one().n;
    return { result, rows };
  });
}

/** Runs `fn` over the registry's SQL handle. */
function inRegistry<T>(fn: (sql: SqlStorage) => T): Promise<T> {
  const stub = env.REGISTRY.get(env.REGISTRY.idFromName("registry"));
  return runInDurableObject(stub, (_i, state) => fn(state.storage.sql));
}

/** Makes a group's members look as if registered before owners were recorded (no owner). */
export function forgetMemberOwners(group: string): Promise<void> {
  return inRegistry((sql) => {
    sql.exec("UPDATE member SET owner = NULL WHERE grp = ?", group);
  });
}

/** As if the 24 h overlap after a producer group's last rotation were over. */
export function endRotationOverlap(producerGroup: string): Promise<void> {
  return inRegistry((sql) => {
    sql.exec(
      "UPDATE signing_secret SET previous_until = ? WHERE owner = ?",
      Date.now() - 1,
      `pg:${producerGroup}`,
    );
  });
}

/** Makes a producer group look as if made before signing secrets existed (it has none). */
export function forgetSigningSecret(producerGroup: string): Promise<void> {
  return inRegistry((sql) => {
    sql.exec("DELETE FROM signing_secret WHERE owner = ?", `pg:${producerGroup}`);
  });
}

/**
 * As if a push subscription's wait on one queue were over: its retries and
 * lapsed claims come due, and its endpoint's back-off ends. Answers the
 * rows SQLite wrote (indexes included: more than zero when any claim moved).
 */
export function makePushDue(topic: string, queue: number, name: string): Promise<number> {
  return inShard(topic, queue, (sql) => {
    sql.exec("UPDATE push_sub SET backoff_until = ? WHERE name = ?", Date.now() - 1, name);
    return sql.exec(
      `UPDATE inflight SET visible_at = ? WHERE grp = ? AND ${UNSETTLED}`,
      Date.now() - 1,
      name,
    ).rowsWritten;
  });
}

/** A push subscription's row on one queue: back-off state and counters as stored. */
export function pushRow(topic: string, queue: number, name: string) {
  return inShard(
    topic,
    queue,
    (sql) =>
      sql
        .exec<{
          failures: number;
          backoff_until: number | null;
          delivered: number;
          failed: number;
        }>("SELECT failures, backoff_until, delivered, failed FROM push_sub WHERE name = ?", name)
        .toArray()[0],
  );
}

/** The trace context columns of one log row. */
export function storedTrace(topic: string, offset: number, queue = 0) {
  return inShard(
    topic,
    queue,
    (sql) =>
      sql
        .exec<{ traceparent: string | null; tracestate: string | null }>(
          "SELECT traceparent, tracestate FROM log WHERE msg_offset = ?",
          offset,
        )
        .toArray()[0],
  );
}

/**
 * What each shard schema step added, undone: with these a test turns a new
 * shard's database back into what an older version wrote, to test the steps
 * from there (test/runtime/schema-migrations.test.ts tests step 1 this way).
 */
const UNDO_SHARD_STEP: Record<number, string> = {
  2: "DROP TABLE sender_ids; ALTER TABLE half DROP COLUMN sender; ALTER TABLE half DROP COLUMN secret;",
  3: "DROP TABLE parked; DROP INDEX half_open_by_age; DELETE FROM meta WHERE k IN ('half_open', 'half_bytes');",
  4: "DROP TABLE push_sub; ALTER TABLE log DROP COLUMN traceparent; ALTER TABLE log DROP COLUMN tracestate;",
};

/** Turns a shard's database back to schema version `to` (its rows of later steps are lost). */
export function rewindShardSchema(topic: string, queue: number, to: number): Promise<void> {
  return inShard(topic, queue, (sql) => {
    const at = sql.exec<{ v: number }>("SELECT max(version) AS v FROM schema_migrations").one().v;
    for (let v = at; v > to; v--) {
      const undo = UNDO_SHARD_STEP[v];
      if (undo === undefined) throw new Error(`no undo for shard schema step ${v}`);
      sql.exec(undo);
      sql.exec("DELETE FROM schema_migrations WHERE version = ?", v);
    }
  });
}
