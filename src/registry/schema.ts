/** The registry's SQLite schema: configuration, subscriptions and membership. */
export const REGISTRY_SCHEMA = `
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
