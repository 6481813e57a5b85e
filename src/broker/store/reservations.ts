/**
 * Room a shard holds for the parts of batches that span several queues
 * (api.md: a batch is all or nothing). The gateway asks every queue of such
 * a batch to reserve room for its part before any part is written; a queue
 * that cannot refuses, and nothing is written anywhere. A reservation holds
 * the part's room under the backlog bounds and the storage ceiling until the
 * part is written, released, or {@link RESERVATION_TTL_MS} passed (a gateway
 * that died between the two steps must not hold room for ever).
 *
 * In memory only: a shard that restarts forgets its reservations, and a part
 * that then arrives is still written (the gateway was told yes), so a bound
 * may be passed by that part. Pure over `now`; no SQL.
 */

/** How long reserved room is held for a part that has not arrived. */
export const RESERVATION_TTL_MS = 10_000;

/** The room one part of a batch needs. */
export interface Room {
  /** Messages that will take a place in the log (not duplicates, not expired, not scheduled). */
  messages: number;
  /** Their bytes, as the backlog bounds count them. */
  bytes: number;
  /** Their upper estimate of database bytes (see storage-limit.ts). */
  footprint: number;
}

/** The room a shard holds for batches spanning queues, by reservation id. */
export class Reservations {
  readonly #held = new Map<string, Room & { until: number }>();

  /** Holds `room` for reservation `id` until `now` + {@link RESERVATION_TTL_MS}. */
  hold(id: string, room: Room, now: number): void {
    this.#held.set(id, { ...room, until: now + RESERVATION_TTL_MS });
  }

  /** Gives up reservation `id` (its part arrived, or the batch was refused elsewhere); answers whether it was held. */
  release(id: string): boolean {
    return this.#held.delete(id);
  }

  /** Forgets every reservation (the shard's data was deleted). */
  clear(): void {
    this.#held.clear();
  }

  /** All the room held at `now` (reservations past their time are dropped). */
  total(now: number): Room {
    const sum: Room = { messages: 0, bytes: 0, footprint: 0 };
    for (const [id, r] of this.#held) {
      if (r.until <= now) {
        this.#held.delete(id);
        continue;
      }
      sum.messages += r.messages;
      sum.bytes += r.bytes;
      sum.footprint += r.footprint;
    }
    return sum;
  }
}
