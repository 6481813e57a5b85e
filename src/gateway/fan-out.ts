/**
 * Merging the answers of several shards into one answer that stays within
 * one byte budget ({@link Limits.maxAnswerBytes}). A fan-out asks its shards
 * in parallel, each for its share of the budget, so what the gateway holds
 * at once is bounded too; a shard whose first message alone is larger than
 * its share answers nothing but says where it stopped, and when the merged
 * answer would then be empty the gateway asks that shard again for a whole
 * answer, so a reader always gets at least one message.
 */
import type { MessagePage } from "../broker/store/state.ts";
import type { AnswerBytes } from "../protocol/encoded-size.ts";
import type { Message } from "../protocol/types.ts";

/** Each of `shards` shards' share of a fan-out's budget of `total` bytes. */
export function shareOf(total: number, shards: number): AnswerBytes {
  return { max: Math.floor(total / Math.max(1, shards)), atLeastOne: false };
}

/** A merged answer, or which page to ask again for a whole answer (its index). */
export interface Merged {
  messages: Message[];
  /** The answer came out empty only because a page was cut by bytes: ask this page's shard again. */
  refill: number | null;
}

interface Key {
  storedAt: number;
  queue: number;
  offset: number;
}

/** The order of a query's answer: oldest first across queues. */
function compare(a: Key, b: Key): number {
  return a.storedAt - b.storedAt || a.queue - b.queue || a.offset - b.offset;
}

/**
 * Merges pages of one query over several queues, oldest first: a prefix of
 * the whole order (never past the point where a page was cut by bytes, since
 * that page's later messages are unknown), at most `limit` messages and
 * `budget` bytes (at least one).
 */
export function mergeOrdered(pages: readonly MessagePage[], limit: number, budget: number): Merged {
  const all: { m: Message; size: number }[] = [];
  let stop: (Key & { page: number }) | null = null;
  pages.forEach((p, i) => {
    p.messages.forEach((m, j) => all.push({ m, size: p.sizes[j]! }));
    if (p.next && (stop === null || compare(p.next, stop) < 0)) stop = { ...p.next, page: i };
  });
  all.sort((a, b) => compare(a.m, b.m));
  const messages: Message[] = [];
  let bytes = 0;
  for (const { m, size } of all) {
    if (messages.length >= limit) break;
    if (stop !== null && compare(m, stop) >= 0) break;
    if (messages.length > 0 && bytes + size > budget) break;
    messages.push(m);
    bytes += size;
  }
  const refill = messages.length === 0 && stop !== null ? (stop as { page: number }).page : null;
  return { messages, refill };
}

/**
 * Merges pages that promise no order across shards (the DLQ list: topic by
 * topic, queue by queue): page after page, at most `limit` messages and
 * `budget` bytes (at least one).
 */
export function mergeInTurn(pages: readonly MessagePage[], limit: number, budget: number): Merged {
  const messages: Message[] = [];
  let bytes = 0;
  for (const p of pages) {
    for (const [j, m] of p.messages.entries()) {
      const size = p.sizes[j]!;
      if (messages.length >= limit || (messages.length > 0 && bytes + size > budget)) {
        return { messages, refill: null };
      }
      messages.push(m);
      bytes += size;
    }
  }
  const cut = pages.findIndex((p) => p.next !== null);
  return { messages, refill: messages.length === 0 && cut >= 0 ? cut : null };
}
