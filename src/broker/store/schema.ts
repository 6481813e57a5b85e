/**
 * The SQLite schema of one queue shard, as an ordered list of migration steps
 * (see src/storage/migrations.ts: a step that has run anywhere is never
 * edited; changes are new steps at the end). Data and indexes are separate
 * tables (the seed's point 14): the commit log is keyed by the dense offset,
 * and every other access path is an index table or a SQLite index over it.
 */
import type { Migration } from "../../storage/migrations.ts";

/** Version 1: the schema as it stood when versions were introduced (2026-12-02). */
const V1_INITIAL = `
CREATE TABLE IF NOT EXISTS meta (
  k TEXT PRIMARY KEY,
  v
) WITHOUT ROWID;

-- The commit log. msg_offset is assigned densely from meta.next_offset and never changes.
CREATE TABLE IF NOT EXISTS log (
  msg_offset INTEGER PRIMARY KEY,
  msg_id TEXT NOT NULL,
  tag TEXT,
  keys TEXT,
  props TEXT,
  sharding_key TEXT,
  body TEXT NOT NULL,
  base64 INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  expire_at INTEGER,
  born_at INTEGER NOT NULL,
  stored_at INTEGER NOT NULL,
  size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS log_by_time ON log (stored_at);
-- Deadlines: counts expired messages for stats (and picks victims of drop-earliest-deadline).
-- Partial, so messages without expireAt cost nothing here.
CREATE INDEX IF NOT EXISTS log_by_deadline ON log (expire_at, msg_offset) WHERE expire_at IS NOT NULL;

-- Key index: message keys to offsets.
CREATE TABLE IF NOT EXISTS msg_key (
  key TEXT NOT NULL,
  msg_offset INTEGER NOT NULL,
  PRIMARY KEY (key, msg_offset)
) WITHOUT ROWID;

-- msgId index: dedup of producer retries and lookup by id. A row points at the
-- log (msg_offset) or, while the message waits, at the timer table (sched_id).
CREATE TABLE IF NOT EXISTS ids (
  msg_id TEXT PRIMARY KEY,
  msg_offset INTEGER,
  sched_id INTEGER,
  stored_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ids_by_time ON ids (stored_at);

-- Scheduled (delayed) messages, sorted by due time: the timer index.
CREATE TABLE IF NOT EXISTS scheduled (
  id INTEGER PRIMARY KEY,
  due_at INTEGER NOT NULL,
  msg TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS scheduled_by_due ON scheduled (due_at, id);

-- Consumer groups seen by this shard: config snapshot, committed pull offset,
-- and the pop cursor (every offset below it was handed out or filtered out).
CREATE TABLE IF NOT EXISTS grp (
  name TEXT PRIMARY KEY,
  config TEXT NOT NULL,
  committed INTEGER,
  pop_next INTEGER,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Pop state per group and message: state 0 in flight, 1 waiting to retry,
-- 2 acked beyond an orderly group's cursor. visible_at is the timer.
CREATE TABLE IF NOT EXISTS inflight (
  grp TEXT NOT NULL,
  msg_offset INTEGER NOT NULL,
  state INTEGER NOT NULL,
  visible_at INTEGER NOT NULL,
  deliveries INTEGER NOT NULL,
  handle TEXT NOT NULL,
  sharding_key TEXT,
  PRIMARY KEY (grp, msg_offset)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inflight_by_visible ON inflight (visible_at) WHERE state < 2;
-- A group's messages due again: without it SQLite (no ANALYZE statistics) reads every
-- in-flight row of the group by the primary key and sorts them, on every receive.
CREATE INDEX IF NOT EXISTS inflight_due ON inflight (grp, visible_at, msg_offset) WHERE state < 2;
CREATE INDEX IF NOT EXISTS inflight_by_key ON inflight (grp, sharding_key) WHERE sharding_key IS NOT NULL;

-- Dead letters per group; the message stays in the log.
CREATE TABLE IF NOT EXISTS dlq (
  grp TEXT NOT NULL,
  msg_offset INTEGER NOT NULL,
  reconsume_times INTEGER NOT NULL,
  moved_at INTEGER NOT NULL,
  PRIMARY KEY (grp, msg_offset)
) WITHOUT ROWID;

-- Half (prepared) messages of transactions.
CREATE TABLE IF NOT EXISTS half (
  id INTEGER PRIMARY KEY,
  msg_id TEXT NOT NULL,
  producer_group TEXT NOT NULL,
  msg TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  check_at INTEGER,
  checks INTEGER NOT NULL DEFAULT 0,
  state INTEGER NOT NULL DEFAULT 0,
  msg_offset INTEGER,
  ended_at INTEGER,
  end_reason TEXT
);
CREATE INDEX IF NOT EXISTS half_by_check ON half (check_at) WHERE state = 0;
`;

/**
 * Version 2: senders (api.md, "Dedup is per sender"). The msgId index
 * `ids` keeps the admin space (the admin token, Service Bindings, the open
 * local mode), which is where every msgId stored before spaces existed
 * belongs; each scoped token subject gets its own space in `sender_ids`.
 *
 * Why a second table rather than a new key in `ids`: `ids` can hold millions
 * of rows, and its primary key is `msg_id` alone. Scoping that key means a new
 * primary key, which SQLite can only get by rewriting the table: O(rows) of
 * work in one request, inside the migration's transaction. No encoding of
 * (sender, msgId) into the old TEXT column can be told apart from every raw
 * msgId (a msgId may be any string), so old rows could be shadowed. A new,
 * empty table is O(1) to create, old rows stay exactly what they were (the
 * admin space), and the key (msg_id, sender) lets the admin token find a
 * msgId in every space with one range of the key. Adding nullable columns
 * (`half.sender`, `half.secret`) only changes the table's definition:
 * existing rows read as NULL (the admin space; a txId without a secret, which
 * stays valid) without being rewritten.
 */
const V2_SENDERS = `
CREATE TABLE IF NOT EXISTS sender_ids (
  msg_id TEXT NOT NULL,
  sender TEXT NOT NULL,
  msg_offset INTEGER,
  sched_id INTEGER,
  stored_at INTEGER NOT NULL,
  PRIMARY KEY (msg_id, sender)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sender_ids_by_time ON sender_ids (stored_at);
-- Whose a half message is: its msgId's space once committed, and who may end it. NULL: the admin space.
ALTER TABLE half ADD COLUMN sender TEXT;
-- The random part of its txId: only a caller presenting it ends the transaction. NULL: prepared before.
ALTER TABLE half ADD COLUMN secret TEXT;
`;

/**
 * Version 3 (issue 15, data safety): open half messages hold room under the
 * backlog bounds (their count and bytes join the counters in `meta`,
 * backfilled from the open rows, which the maximum lifetime keeps few); an
 * index finds those past that lifetime; and a table holds the rows of timer
 * work that failed again and again, set aside rather than retried forever.
 */
const V3_DATA_SAFETY = `
INSERT OR IGNORE INTO meta (k, v)
  SELECT 'half_open', count(*) FROM half WHERE state = 0;
INSERT OR IGNORE INTO meta (k, v)
  SELECT 'half_bytes', coalesce(sum(CASE WHEN json_valid(msg) THEN json_extract(msg, '$.message.size') END), 0)
  FROM half WHERE state = 0;
CREATE INDEX IF NOT EXISTS half_open_by_age ON half (created_at) WHERE state = 0;

-- A row of timer work set aside: kind ('scheduled' or 'half'), its id in its
-- own table, what it held (a scheduled message's JSON), and the last error.
CREATE TABLE IF NOT EXISTS parked (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  ref INTEGER NOT NULL,
  payload TEXT,
  error TEXT NOT NULL,
  parked_at INTEGER NOT NULL
);
`;

/**
 * The `state` of an `inflight` row: where one message stands for one group.
 * (Numbers, as step 1 stored them; SQL uses these names, never the digits.)
 */
export const PopState = {
  /** Handed out, waiting for its ack until `visible_at`. */
  inflight: 0,
  /** Failed or lapsed: visible again at `visible_at`. */
  retry: 1,
  /** Settled ahead of an orderly group's cursor (kept so no rescan hands it out again). */
  acked: 2,
} as const;

/**
 * SQL condition on `inflight.state`: still the group's to deliver (in flight
 * or waiting to retry). The partial indexes of step 1 say the same, so
 * SQLite uses them for queries written with it.
 */
export const UNSETTLED = `state < ${PopState.acked}`;

/** The `state` of a `half` row (a transaction's half message). */
export const HalfState = { open: 0, committed: 1, rolledBack: 2 } as const;

/**
 * Version 4 (issue 19): the trace context of each message (two nullable log
 * columns: O(1) in SQLite whatever the log holds, old rows read as NULL), and
 * the push subscriptions this shard delivers to (store/push.ts): their config
 * snapshot, delivery counters, latency histogram and back-off state.
 */
function v4TraceContextAndPush(sql: SqlStorage): void {
  // ALTER TABLE has no IF NOT EXISTS; looking first keeps the step safe to meet twice.
  const columns = new Set(
    sql
      .exec<{ name: string }>("SELECT name FROM pragma_table_info('log')")
      .toArray()
      .map((c) => c.name),
  );
  if (!columns.has("traceparent")) sql.exec("ALTER TABLE log ADD COLUMN traceparent TEXT");
  if (!columns.has("tracestate")) sql.exec("ALTER TABLE log ADD COLUMN tracestate TEXT");
  sql.exec(`CREATE TABLE IF NOT EXISTS push_sub (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    backoff_until INTEGER,
    last_error TEXT,
    last_error_at INTEGER,
    latency TEXT
  ) WITHOUT ROWID`);
}

/** Every step of the shard's schema, oldest first. */
export const SHARD_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial: log, indexes, groups, pop state, dead letters, half messages",
    up: V1_INITIAL,
  },
  {
    version: 2,
    name: "senders: msgId index per sender, half messages' senders and txId secrets",
    up: V2_SENDERS,
  },
  {
    version: 3,
    name: "half messages hold room (counters, age index); parked timer work",
    up: V3_DATA_SAFETY,
  },
  {
    version: 4,
    name: "trace context of messages; push subscriptions delivered by the shard",
    up: v4TraceContextAndPush,
  },
];

/** Extra indexes created only for topics whose overflow policy needs them. */
export const POLICY_INDEXES = {
  "drop-lowest-priority":
    "CREATE INDEX IF NOT EXISTS log_by_priority ON log (priority, msg_offset)",
  "drop-earliest-deadline":
    "CREATE INDEX IF NOT EXISTS log_by_deadline ON log (expire_at, msg_offset) WHERE expire_at IS NOT NULL",
} as const;
