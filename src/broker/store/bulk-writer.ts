/**
 * Writes the rows of one append batch with a few statements instead of two or
 * three per message. Each statement call from JavaScript into SQLite costs
 * more than the row it inserts; the batch's rows travel as one JSON array
 * bound to one parameter and SQLite's `json_each` unpacks them. Measured on
 * the local runtime: about half the shard's CPU per stored message.
 *
 * Chunks stay far below the platform's 2 MB limit on one string value,
 * counted in UTF-8 bytes as the platform counts them (a chunk of CJK text
 * measured in UTF-16 units would be three times its count): a row that would
 * take a chunk past {@link CHUNK_BYTES} starts the next one, and a row too
 * large for a chunk of its own is written alone with ordinary parameters.
 */
import { fieldsExtra, utf8Extra } from "../../protocol/encoded-size.ts";

import { type IdValues, type Sender, writeIdRow, writeIdRows } from "./msg-ids.ts";

/** The log columns of one message, in {@link LOG_COLUMNS} order. */
export type LogValues = [
  offset: number,
  msgId: string,
  tag: string | null,
  keys: string | null,
  props: string | null,
  shardingKey: string | null,
  body: string,
  base64: number,
  priority: number,
  expireAt: number | null,
  bornAt: number,
  storedAt: number,
  size: number,
  traceparent: string | null,
  tracestate: string | null,
];

const LOG_COLUMNS =
  "msg_offset, msg_id, tag, keys, props, sharding_key, body, base64, priority, expire_at, born_at, stored_at, size, traceparent, tracestate";

/** UTF-8 bytes of JSON per statement parameter. */
export const CHUNK_BYTES = 512 * 1024;

/** UTF-8 bytes of a log row's JSON, from its length and what its non-ASCII characters add. */
function rowBytes(json: string, v: LogValues): number {
  const [, msgId, tag, keys, props, shardingKey, body, base64, , , , , size] = v;
  return (
    json.length +
    fieldsExtra({ msgId, tag, keys, props, shardingKey, body, base64: base64 === 1, size })
  );
}

export class BulkLogWriter {
  private log: string[] = [];
  private keys: string[] = [];
  private ids: IdValues[] = [];
  /** UTF-8 bytes queued per parameter: log rows, key rows, msgId rows. */
  private logBytes = 0;
  private keyBytes = 0;
  private idBytes = 0;

  constructor(private readonly sql: SqlStorage) {}

  /** Queues a log row, its key index rows and its msgId index row (in `sender`'s space). */
  add(values: LogValues, keys: readonly string[], sender: Sender): void {
    const row = JSON.stringify(values);
    const bytes = rowBytes(row, values);
    if (bytes > CHUNK_BYTES) {
      writeLogRow(this.sql, values, keys, sender);
      return;
    }
    const [offset, msgId, , , , , , , , , , storedAt] = values;
    const keyRows = keys.map((key) => JSON.stringify([key, offset]));
    let keyBytes = 0;
    for (let i = 0; i < keys.length; i++) keyBytes += keyRows[i]!.length + 1 + utf8Extra(keys[i]);
    const idRow: IdValues = [msgId, offset, storedAt, sender];
    // The id rows are sent in a parameter per sender's space; counted as if all went in one.
    const idBytes = JSON.stringify(idRow).length + 1 + utf8Extra(msgId) + utf8Extra(sender);
    if (
      this.logBytes + bytes + 1 > CHUNK_BYTES ||
      this.keyBytes + keyBytes > CHUNK_BYTES ||
      this.idBytes + idBytes > CHUNK_BYTES
    ) {
      this.flush();
    }
    this.log.push(row);
    this.keys.push(...keyRows);
    this.ids.push(idRow);
    this.logBytes += bytes + 1;
    this.keyBytes += keyBytes;
    this.idBytes += idBytes;
  }

  /** Writes everything queued. */
  flush(): void {
    if (this.log.length) {
      this.sql.exec(
        `INSERT INTO log (${LOG_COLUMNS}) SELECT value->>0, value->>1, value->>2, value->>3, value->>4,
           value->>5, value->>6, value->>7, value->>8, value->>9, value->>10, value->>11, value->>12,
           value->>13, value->>14
         FROM json_each(?)`,
        `[${this.log.join(",")}]`,
      );
    }
    if (this.keys.length) {
      this.sql.exec(
        "INSERT OR IGNORE INTO msg_key (key, msg_offset) SELECT value->>0, value->>1 FROM json_each(?)",
        `[${this.keys.join(",")}]`,
      );
    }
    if (this.ids.length) writeIdRows(this.sql, this.ids);
    this.log = [];
    this.keys = [];
    this.ids = [];
    this.logBytes = 0;
    this.keyBytes = 0;
    this.idBytes = 0;
  }
}

/** Writes one message's log row, key index rows and msgId index row (in `sender`'s space) at once. */
export function writeLogRow(
  sql: SqlStorage,
  values: LogValues,
  keys: readonly string[],
  sender: Sender,
): void {
  sql.exec(
    `INSERT INTO log (${LOG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ...values,
  );
  const [offset, msgId, , , , , , , , , , storedAt] = values;
  for (const key of keys) {
    sql.exec("INSERT OR IGNORE INTO msg_key (key, msg_offset) VALUES (?, ?)", key, offset);
  }
  writeIdRow(sql, sender, msgId, offset, storedAt);
}
