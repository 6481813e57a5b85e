/**
 * The registry's SQLite schema (configuration, subscriptions and membership)
 * as ordered migration steps: see src/storage/migrations.ts (never edit an
 * applied step; add one at the end).
 */
import type { Migration } from "../storage/migrations.ts";

/** Version 1: the schema as it stood when versions were introduced (2026-12-02). */
const V1_INITIAL = `
CREATE TABLE IF NOT EXISTS topic (name TEXT PRIMARY KEY, config TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS grp (name TEXT PRIMARY KEY, config TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS producer_group (name TEXT PRIMARY KEY, config TEXT NOT NULL) WITHOUT ROWID;
-- Which topics a group consumes: where its offsets, in-flight messages and dead letters live.
CREATE TABLE IF NOT EXISTS subscription (grp TEXT NOT NULL, topic TEXT NOT NULL, PRIMARY KEY (grp, topic)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS member (
  grp TEXT NOT NULL,
  client_id TEXT NOT NULL,
  topics TEXT NOT NULL,
  last_seen INTEGER NOT NULL,
  PRIMARY KEY (grp, client_id)
) WITHOUT ROWID;
`;

/**
 * Version 2 (issue 16): receivers' signing secrets (see signing-secrets.ts),
 * and the sender that registered each heartbeat member (its `clientId` is
 * bound to that sender until the member expires). Members from before have no
 * owner: the next heartbeat of their clientId claims them.
 */
function v2SecretsAndMemberOwners(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS signing_secret (
    owner TEXT PRIMARY KEY,
    current TEXT NOT NULL,
    previous TEXT,
    previous_until INTEGER,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID`);
  // ALTER TABLE has no IF NOT EXISTS; looking first keeps the step safe to meet twice.
  const columns = sql
    .exec<{ name: string }>("SELECT name FROM pragma_table_info('member')")
    .toArray();
  if (!columns.some((c) => c.name === "owner"))
    sql.exec("ALTER TABLE member ADD COLUMN owner TEXT");
}

/**
 * Version 3 (issue 19): push subscriptions (config by name, with the topic
 * they deliver, for the topic's listing and deletion). Their signing secrets
 * are in `signing_secret` (owner `push:{name}`).
 */
const V3_PUSH = `
CREATE TABLE IF NOT EXISTS push (
  name TEXT PRIMARY KEY,
  topic TEXT NOT NULL,
  config TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS push_by_topic ON push (topic, name);
`;

/** Every step of the registry's schema, oldest first. */
export const REGISTRY_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial: topics, groups, producer groups, subscriptions, members",
    up: V1_INITIAL,
  },
  {
    version: 2,
    name: "signing secrets of receivers; heartbeat members bound to their sender",
    up: v2SecretsAndMemberOwners,
  },
  { version: 3, name: "push subscriptions", up: V3_PUSH },
];
