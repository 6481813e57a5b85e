/**
 * Versioned schemas for the SQLite databases of edgemq's Durable Objects.
 *
 * A Durable Object's database outlives every deployment of the code that
 * opens it, so a table can only ever change by a step that turns the old
 * shape into the new one. Each object keeps the steps it has applied in a
 * small table; opening the object applies the ones it lacks, in order, inside
 * the caller's transaction (all of them or none).
 *
 * Rules for steps, since a step that has run anywhere can never be edited:
 * - append new steps at the end; never change or reorder an applied one;
 * - step 1 is the schema as it stood before versions existed, written with
 *   `IF NOT EXISTS`, so a database from then is recognised as version 1;
 * - later steps say exactly what changes (`ALTER TABLE`, a new table, a
 *   backfill bounded in work: a shard may hold gigabytes).
 *
 * A database at a version newer than the code knows is refused rather than
 * used: that is a rollback to older code, which would misread the new shape.
 */

/** One step from version `version - 1` to `version`. */
export interface Migration {
  readonly version: number;
  /** What the step does, recorded with it. */
  readonly name: string;
  /** SQL text (may hold several statements) or a function of the SQL handle. */
  readonly up: string | ((sql: SqlStorage) => void);
}

/** What {@link migrate} did. */
export interface MigrationOutcome {
  from: number;
  to: number;
}

/** The table that records applied steps (one row per step). */
export const MIGRATIONS_TABLE = "schema_migrations";

/** Checks that `steps` are numbered 1, 2, 3, … in order (a programming error otherwise). */
function checkSteps(steps: readonly Migration[]): void {
  steps.forEach((s, i) => {
    if (s.version !== i + 1) {
      throw new Error(`migration ${s.name} has version ${s.version}, expected ${i + 1}`);
    }
  });
}

/** The highest version recorded in `table`, 0 when none is. */
export function schemaVersion(sql: SqlStorage, table = MIGRATIONS_TABLE): number {
  const known = sql
    .exec<{ n: number }>(
      "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
      table,
    )
    .one().n;
  if (!known) return 0;
  return sql.exec<{ v: number | null }>(`SELECT max(version) AS v FROM ${table}`).one().v ?? 0;
}

/**
 * Applies the steps the database lacks, in order. Run it inside one
 * transaction (`ctx.storage.transactionSync`) so a failing step leaves the
 * database at its old version, whole.
 *
 * @param table where applied steps are recorded; only tests change it.
 */
export function migrate(
  sql: SqlStorage,
  steps: readonly Migration[],
  now: number,
  table = MIGRATIONS_TABLE,
): MigrationOutcome {
  checkSteps(steps);
  const from = schemaVersion(sql, table);
  const latest = steps.length;
  if (from > latest) {
    throw new Error(
      `this database is at schema version ${from}, newer than this code knows (${latest}): refusing to open it with older code`,
    );
  }
  if (from === latest) return { from, to: from };
  sql.exec(
    `CREATE TABLE IF NOT EXISTS ${table} (
       version INTEGER PRIMARY KEY,
       name TEXT NOT NULL,
       applied_at INTEGER NOT NULL
     )`,
  );
  for (const step of steps.slice(from)) {
    if (typeof step.up === "string") sql.exec(step.up);
    else step.up(sql);
    sql.exec(
      `INSERT INTO ${table} (version, name, applied_at) VALUES (?, ?, ?)`,
      step.version,
      step.name,
      now,
    );
  }
  return { from, to: latest };
}
