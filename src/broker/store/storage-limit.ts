/**
 * The storage ceiling of a shard. A Durable Object's SQLite database holds at
 * most 10 GB on Cloudflare, and a write past that fails. A shard refuses a
 * send with `STORAGE_FULL` (507) while its database plus what the batch could
 * add would reach its ceiling, so the failing write never happens: everything
 * acknowledged stays, and the producer gets a clear answer it can retry.
 *
 * The ceiling is, first found: the shard's own setting (set by an operator or
 * a test through `QueueShard.setStorageLimit`), the `EDGEMQ_SHARD_STORAGE_LIMIT`
 * binding, else {@link Limits.shardStorageLimitBytes} (9.5 GiB).
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
    bytes += (m.deliverAt !== null ? 2 : 1) * fields + ROW_OVERHEAD_BYTES;
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
  if (Number.isFinite(fromBinding) && fromBinding > 0) return fromBinding;
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
 * Refuses a write of `messages` with STORAGE_FULL when it could take a
 * database of `databaseSize` bytes to its ceiling `limit`.
 */
export function assertRoomFor(
  messages: readonly NormalizedMessage[],
  databaseSize: number,
  limit: number,
  queue: number,
): void {
  if (wouldExceedStorage(databaseSize, batchFootprint(messages), limit)) {
    throw new EdgemqError(
      "STORAGE_FULL",
      `queue ${queue} holds ${databaseSize} of its ${limit} storage bytes; consume and let retention or a purge make room`,
    );
  }
}
