/**
 * The runtime's ceiling for edgemq's benchmarks: the same HTTP path (a Worker
 * parses a JSON batch and calls a SQLite-backed Durable Object over RPC, the
 * object writes one row per message and answers), with no broker logic: no
 * validation beyond JSON, no dedup index, no counters, no overflow, no
 * waiters. The log table has edgemq's columns and its INTEGER PRIMARY KEY
 * offset, and nothing else (no secondary index), so it is the strict bound.
 *
 *   POST /append?shard=S  {"messages": [{"body": "..."}, ...]}  → {"results": [{"offset", "storedAt"}]}
 *   GET  /read?shard=S&offset=N&max=M                          → {"messages": [...], "nextOffset"}
 *   GET  /v1/health                                            → {"ok": true}
 *
 * The classes are named QueueShard and TopicRegistry only because the local
 * runner (scripts/local-server.ts) declares those two namespaces.
 */
import { DurableObject } from "cloudflare:workers";

interface Env {
  SHARDS: DurableObjectNamespace<QueueShard>;
}

interface Row {
  msgId: string;
  body: string;
  bornAt: number;
  size: number;
}

const SCHEMA = `
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
);`;

/** A bare SQLite-backed object: one INSERT per row, offsets from memory. */
export class QueueShard extends DurableObject<Env> {
  private next: number;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(SCHEMA);
    const top = ctx.storage.sql
      .exec<{ o: number | null }>("SELECT max(msg_offset) AS o FROM log")
      .one().o;
    this.next = top === null ? 0 : top + 1;
  }

  append(rows: Row[]): { offset: number; storedAt: number }[] {
    const sql = this.ctx.storage.sql;
    const storedAt = Date.now();
    const out: { offset: number; storedAt: number }[] = [];
    for (const r of rows) {
      const offset = this.next++;
      sql.exec(
        `INSERT INTO log (msg_offset, msg_id, tag, keys, props, sharding_key, body, base64, priority,
           expire_at, born_at, stored_at, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        offset,
        r.msgId,
        null,
        null,
        null,
        null,
        r.body,
        0,
        4,
        null,
        r.bornAt,
        storedAt,
        r.size,
      );
      out.push({ offset, storedAt });
    }
    return out;
  }

  read(offset: number, max: number): { messages: unknown[]; nextOffset: number } {
    const messages: unknown[] = [];
    let nextOffset = offset;
    for (const row of this.ctx.storage.sql.exec<Record<string, SqlStorageValue>>(
      "SELECT * FROM log WHERE msg_offset >= ? ORDER BY msg_offset LIMIT ?",
      offset,
      max,
    )) {
      const o = row.msg_offset as number;
      messages.push({
        msgId: row.msg_id,
        offset: o,
        body: row.body,
        encoding: "utf8",
        priority: row.priority,
        bornAt: row.born_at,
        storedAt: row.stored_at,
      });
      nextOffset = o + 1;
    }
    return { messages, nextOffset };
  }
}

/** Unused; declared because the local runner binds this namespace. */
export class TopicRegistry extends DurableObject<Env> {}

const json = (v: unknown, status = 200) =>
  new Response(JSON.stringify(v), { status, headers: { "content-type": "application/json" } });

const encoder = new TextEncoder();

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const shard = env.SHARDS.get(env.SHARDS.idFromName(url.searchParams.get("shard") ?? "0"));
    if (url.pathname === "/v1/health") return json({ ok: true });
    if (url.pathname === "/append" && request.method === "POST") {
      const body = (await request.json()) as { messages: { body: string }[] };
      const now = Date.now();
      const rows = body.messages.map((m) => ({
        msgId: crypto.randomUUID(),
        body: m.body,
        bornAt: now,
        size: encoder.encode(m.body).byteLength,
      }));
      return json({ results: await shard.append(rows) });
    }
    if (url.pathname === "/read" && request.method === "GET") {
      const offset = Number(url.searchParams.get("offset") ?? "0");
      const max = Number(url.searchParams.get("max") ?? "32");
      return json(await shard.read(offset, max));
    }
    return json({ error: { code: "NOT_FOUND", message: "no such route" } }, 404);
  },
};
