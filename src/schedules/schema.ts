/**
 * The scheduler's SQLite schema as ordered migration steps (see
 * src/storage/migrations.ts: never edit an applied step; add one at the end).
 */
import type { Migration } from "../storage/migrations.ts";

/**
 * Version 1: one row per schedule, its config and where its fires stand. A
 * rowid table, not WITHOUT ROWID: a row may hold a 1 MiB message, and
 * WITHOUT ROWID tables suit small rows only.
 */
const V1_INITIAL = `
CREATE TABLE IF NOT EXISTS schedule (
  name TEXT PRIMARY KEY,
  -- ScheduleConfig as JSON (the message included: at most ScheduleLimits.maxBodyBytes).
  config TEXT NOT NULL,
  -- The earliest fire time not yet sent; null while paused or when the cron never fires again.
  next_fire_at INTEGER,
  -- When the alarm next looks at this schedule: next_fire_at, or a retry's time after a
  -- failure that may pass. Null exactly when next_fire_at is.
  due_at INTEGER,
  last_fire_at INTEGER,
  last_msg_id TEXT,
  last_status TEXT,
  fires INTEGER NOT NULL DEFAULT 0,
  missed_fires INTEGER NOT NULL DEFAULT 0,
  errors INTEGER NOT NULL DEFAULT 0,
  -- Failures in a row of the pending fire (its retry backoff); 0 after a send.
  failures INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  last_error_at INTEGER
);
-- The alarm's look-up: the earliest due schedules.
CREATE INDEX IF NOT EXISTS schedule_by_due ON schedule (due_at) WHERE due_at IS NOT NULL;
`;

/** Every step of the scheduler's schema, oldest first. */
export const SCHEDULER_MIGRATIONS: readonly Migration[] = [
  { version: 1, name: "initial: schedules with their fire state", up: V1_INITIAL },
];
