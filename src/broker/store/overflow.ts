/**
 * Overflow policies: which stored messages make room for an incoming one when
 * a queue is at its backlog bound.
 *
 * The victims are chosen as a whole, without deleting anything, and deleted
 * only when the incoming message will then be stored. Deleting one at a time
 * until the message fits would lose stored, acknowledged messages for
 * nothing whenever the policy then refuses the rest (a stored message of
 * higher priority, or a later deadline, than the incoming one): instead the
 * incoming message alone is dropped. The choice is a pure function over the
 * candidates in the policy's order (SQL yields them lazily, cheapest columns
 * only); {@link victimCandidates} is the one query.
 */
import type { OverflowPolicy, TopicConfig } from "../../protocol/types.ts";

/** A stored message as the policies weigh it. */
export interface Victim {
  msg_offset: number;
  size: number;
  priority: number;
  expire_at: number | null;
  [k: string]: SqlStorageValue;
}

/** What counts against a queue's bound: stored messages and whatever else holds room. */
export interface Held {
  messages: number;
  bytes: number;
}

/** How far over its bounds a queue would be with one more message (each part ≥ 0). */
export interface Excess {
  messages: number;
  bytes: number;
}

/**
 * Stored messages a policy may remove, in its order, at most this many per
 * incoming message: a message that needs more is dropped itself.
 */
export const MAX_VICTIMS = 100_000;

/** How far `held` plus a message of `size` bytes is over the topic's bounds, or null when it fits. */
export function excessOver(
  held: Held,
  size: number,
  config: Pick<TopicConfig, "maxBacklogMessages" | "maxBacklogBytes">,
): Excess | null {
  const messages =
    config.maxBacklogMessages === null ? 0 : held.messages + 1 - config.maxBacklogMessages;
  const bytes = config.maxBacklogBytes === null ? 0 : held.bytes + size - config.maxBacklogBytes;
  if (messages <= 0 && bytes <= 0) return null;
  return { messages: Math.max(0, messages), bytes: Math.max(0, bytes) };
}

/** The incoming message as the policies weigh it. */
export interface Incoming {
  priority: number;
  expireAt: number | null;
}

/**
 * Whether the policy would rather drop the incoming message than `victim`:
 * a lower priority than it, or an earlier deadline.
 */
function incomingGoesFirst(policy: OverflowPolicy, victim: Victim, m: Incoming): boolean {
  if (policy === "drop-lowest-priority") return victim.priority > m.priority;
  if (policy === "drop-earliest-deadline") {
    return m.expireAt !== null && (victim.expire_at === null || m.expireAt < victim.expire_at);
  }
  return false;
}

/**
 * The whole set of stored messages to remove so that the incoming message
 * fits under the bounds, taken from `candidates` in the policy's order, or
 * null when the policy drops the incoming message instead: it comes before
 * the next candidate in the policy's order, the candidates run out, or more
 * than `cap` would be needed. Nothing is deleted here.
 */
export function chooseVictims(
  candidates: Iterable<Victim>,
  m: Incoming,
  policy: OverflowPolicy,
  excess: Excess,
  cap = MAX_VICTIMS,
): Victim[] | null {
  if (policy === "reject" || policy === "drop-newest") return null;
  const victims: Victim[] = [];
  let messages = 0;
  let bytes = 0;
  for (const v of candidates) {
    if (victims.length >= cap || incomingGoesFirst(policy, v, m)) return null;
    victims.push(v);
    messages++;
    bytes += v.size;
    if (messages >= excess.messages && bytes >= excess.bytes) return victims;
  }
  return null;
}

/**
 * The stored messages a policy removes first, lazily, in its order, from
 * offset `from` on: the oldest (`drop-oldest`); the lowest priority, the
 * oldest among equals (`drop-lowest-priority`, over its index); those with a
 * deadline, earliest first, then the oldest without one
 * (`drop-earliest-deadline`, over the deadline index).
 */
export function* victimCandidates(
  sql: SqlStorage,
  policy: OverflowPolicy,
  from: number,
): Generator<Victim> {
  const cols = "msg_offset, size, priority, expire_at";
  if (policy === "drop-lowest-priority") {
    yield* sql.exec<Victim>(
      `SELECT ${cols} FROM log WHERE +msg_offset >= ? ORDER BY priority, msg_offset`,
      from,
    );
  } else if (policy === "drop-earliest-deadline") {
    yield* sql.exec<Victim>(
      `SELECT ${cols} FROM log WHERE expire_at IS NOT NULL AND +msg_offset >= ?
       ORDER BY expire_at, msg_offset`,
      from,
    );
    yield* sql.exec<Victim>(
      `SELECT ${cols} FROM log WHERE expire_at IS NULL AND msg_offset >= ? ORDER BY msg_offset`,
      from,
    );
  } else if (policy === "drop-oldest") {
    yield* sql.exec<Victim>(
      `SELECT ${cols} FROM log WHERE msg_offset >= ? ORDER BY msg_offset`,
      from,
    );
  }
}
