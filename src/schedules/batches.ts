/**
 * How one alarm run groups its due fires into sends: the fires to one topic
 * travel together (one send of several messages: one request per shard
 * instead of one per fire), in batches bounded in count and bytes. Pure; the
 * Scheduler sends each batch and falls back to one send per fire when a batch
 * is refused (msgIds make that resend safe: what a partly stored batch stored
 * is answered `duplicate`).
 */

/** Messages and body bytes of one batch (a larger message goes alone). */
export const BATCH_MESSAGES = 100;
export const BATCH_BYTES = 1024 * 1024;

/** Groups `items` by topic, in order of first appearance, into bounded batches. */
export function batchesByTopic<T>(
  items: readonly T[],
  topicOf: (item: T) => string,
  bytesOf: (item: T) => number,
  maxMessages: number = BATCH_MESSAGES,
  maxBytes: number = BATCH_BYTES,
): T[][] {
  const open = new Map<string, { items: T[]; bytes: number }>();
  const out: T[][] = [];
  for (const item of items) {
    const topic = topicOf(item);
    const bytes = bytesOf(item);
    let batch = open.get(topic);
    if (batch && (batch.items.length >= maxMessages || batch.bytes + bytes > maxBytes)) {
      batch = undefined;
    }
    if (!batch) {
      batch = { items: [], bytes: 0 };
      open.set(topic, batch);
      out.push(batch.items);
    }
    batch.items.push(item);
    batch.bytes += bytes;
  }
  return out;
}
