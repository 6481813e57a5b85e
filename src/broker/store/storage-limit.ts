/**
 * The storage ceiling of a shard. A Durable Object's SQLite database holds at
 * most 10 GB on Cloudflare, and a write past that fails. A shard refuses a
 * send with `STORAGE_FULL` (507) while its database plus what the batch could
 * add would reach its ceiling, so the failing write never happens: everything
 * acknowledged stays, and the producer gets a clear answer it can retry.
 *
 * The ceiling is, first found: the shard's own setting (set by an operator or
 * a test through `QueueShard.setStorageLimit`), the `EDGEMQ_SHARD_STORAGE_LIMIT`
 * binding, else {@link Limits.shardStorageLimitBytes} (9.5 GB, decimal). The
 * binding may only lower it: above it, the writes that are never refused
 * (receives, acks, commits, cleanup) would run into the platform's 10 GB.
 */
import { EdgemqError } from "../../protocol/errors.ts";
import { Limits } from "../../protocol/limits.ts";
import type { NormalizedMessage } from "../../protocol/validate.ts";

/**
 * Bytes one stored message may cost besides its own fields: the row header,
 * the time, msgId and key index entries, and page slack. Generous on purpose:
 * the estimate only has to err on the side of refusing early.
 */
const ROW_OVERHEAD_BYTES = 512;

/** SQLite's page size in a Durable Object's database. */
const PAGE_BYTES = 4096;
/** What a table page holds of rows: the page less its header and cell pointers, with slack. */
const PAGE_ROOM = 3800;

/**
 * The pages a row of `bytes` takes, in bytes. Rows share pages whole: a row
 * just over half a page takes a page to itself (a 2.1 KB message costs 4 KiB,
 * not 2.1), and a row over a page spills to overflow pages.
 */
export function rowPageCost(bytes: number): number {
  if (bytes > PAGE_ROOM) return Math.ceil(bytes / PAGE_ROOM) * PAGE_BYTES;
  return PAGE_BYTES / Math.floor(PAGE_ROOM / Math.max(1, bytes));
}

/** An upper estimate of the bytes a batch adds to the database. */
export function batchFootprint(messages: readonly NormalizedMessage[]): number {
  let bytes = 0;
  for (const m of messages) {
    // Bodies are stored as sent (base64 stays text), so count the longer of the two forms.
    let fields = Math.max(m.size, m.body.length) + 2 * m.msgId.length;
    for (const k of m.keys) fields += 2 * k.length;
    if (m.properties)
      for (const [k, v] of Object.entries(m.properties)) fields += k.length + v.length + 6;
    fields += (m.tag?.length ?? 0) + (m.shardingKey?.length ?? 0);
    // A scheduled message is stored twice over its life (timer row, then log row).
    bytes += (m.deliverAt !== null ? 2 : 1) * rowPageCost(fields + 64) + ROW_OVERHEAD_BYTES;
  }
  return bytes;
}

/** The ceiling in bytes from the shard's setting, the binding's text, or the default. */
export function resolveStorageLimit(
  setting: number | null | undefined,
  binding: string | undefined,
): number {
  if (typeof setting === "number" && Number.isFinite(setting) && setting > 0) return setting;
  const fromBinding = binding === undefined || binding.trim() === "" ? NaN : Number(binding);
  if (Number.isFinite(fromBinding) && fromBinding > 0) {
    return Math.min(fromBinding, Limits.shardStorageLimitBytes);
  }
  return Limits.shardStorageLimitBytes;
}

/** Whether writing `footprint` more bytes to a database of `databaseSize` would reach `limit`. */
export function wouldExceedStorage(
  databaseSize: number,
  footprint: number,
  limit: number,
): boolean {
  return databaseSize + footprint >= limit;
}

/**
 * Share of its ceiling a shard must have free to call its room plenty: the
 * gateway may then write parts of batches spanning queues to it for a while
 * without reserving room first (see reservations.ts).
 */
export const PLENTY_SHARE = 0.1;

/** Whether a database of `databaseSize` bytes, with `reserved` bytes promised, has plenty of room under `limit`. */
export function plentyOfRoom(databaseSize: number, reserved: number, limit: number): boolean {
  return limit - databaseSize - reserved >= limit * PLENTY_SHARE;
}

/**
 * How far past its ceiling `limit` a part of a batch spanning queues that
 * was admitted (its room reserved, or known to be plenty) may still take a
 * shard: half the headroom below the platform's limit, or 2.5 % of a lower
 * ceiling. Past that even an admitted part is refused (and the batch it
 * belongs to is then stored in part: see docs/guarantees.md).
 */
export function admittedLimit(limit: number): number {
  const headroom = Limits.shardDatabaseMaxBytes - Limits.shardStorageLimitBytes;
  return limit + Math.min(headroom / 2, limit * 0.025);
}

/**
 * Refuses a write of `footprint` bytes (see {@link batchFootprint}) with
 * STORAGE_FULL when it could take a database of `databaseSize` bytes to its
 * ceiling `limit`.
 */
export function assertRoomFor(
  footprint: number,
  databaseSize: number,
  limit: number,
  queue: number,
): void {
  if (wouldExceedStorage(databaseSize, footprint, limit)) {
    throw new EdgemqError(
      "STORAGE_FULL",
      `queue ${queue} holds ${databaseSize} of its ${limit} storage bytes; consume and let retention or a purge make room`,
    );
  }
}
