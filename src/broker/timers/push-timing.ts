/**
 * Timing and sizing maths of push deliveries, as pure functions of `now`
 * (unit-tested directly): each queue's share of a subscription's
 * concurrency, how long a claim holds its message, the delay before a retry
 * (`Retry-After` included), the back-off of a failing endpoint, and the
 * latency histogram's bucket.
 */
import { PUSH_LATENCY_BUCKETS_MS, PushLimits } from "../../protocol/push.ts";
import { retryDelayMs } from "./timing.ts";

/**
 * Fetches one shard runs at once, over all its subscriptions. Cloudflare
 * lets one invocation hold 6 connections open at a time and queues the rest
 * inside the runtime, where their timeouts would run while they wait; so the
 * shard never starts a seventh. Throughput per queue is then at most
 * 6 / (endpoint latency), and a topic's grows with its queues (each queue's
 * shard delivers its own messages).
 */
export const PUSH_FETCHES_PER_SHARD = 6;

/**
 * Deliveries one invocation of a shard (an alarm, or a call into it) starts,
 * counting those each delivery's end starts in turn. Every delivery is a
 * subrequest of the invocation that started its chain, and Cloudflare allows
 * 1000 per invocation on the paid plan (50 on the free one); past this the
 * chain stops and the alarm, a new invocation, goes on.
 */
export const PUSH_DELIVERIES_PER_INVOCATION = 500;

/**
 * Slack past a delivery's timeout before its claim lapses: the fetch is
 * aborted at `timeoutMs`, so the claim only lapses when the object was lost
 * meanwhile (then the delivery is retried, as any lapsed receipt is).
 */
export const PUSH_CLAIM_SLACK_MS = 5000;

/** How long a claim for a delivery with `timeoutMs` holds its message. */
export function pushClaimMs(timeoutMs: number): number {
  return timeoutMs + PUSH_CLAIM_SLACK_MS;
}

/**
 * Queue `queue`'s share of a subscription's `maxConcurrency` over `queues`
 * queues: each shard delivers its own queue without asking the others, so the
 * bound is split, the remainder going to the lowest queues. Every queue gets
 * at least one, so a topic with more queues than `maxConcurrency` has up to
 * one delivery in flight per queue.
 */
export function pushShare(maxConcurrency: number, queues: number, queue: number): number {
  const base = Math.floor(maxConcurrency / queues);
  const share = base + (queue < maxConcurrency % queues ? 1 : 0);
  return Math.max(1, share);
}

/**
 * The in-flight bound of a subscription on one queue now: its share, or one
 * while the endpoint is failing (a failing endpoint gets one probe at a time,
 * not its whole share of the shard's fetches).
 */
export function pushLimit(share: number, consecutiveFailures: number): number {
  return consecutiveFailures > 0 ? 1 : share;
}

/**
 * Reads a `Retry-After` header (delta-seconds or an HTTP date) as ms from
 * `now`; null when absent or unreadable. Capped at
 * {@link PushLimits.maxRetryAfterMs}.
 */
export function retryAfterMs(header: string | null, now: number): number | null {
  if (header === null) return null;
  const text = header.trim();
  let ms: number;
  if (/^\d{1,10}$/.test(text)) ms = Number(text) * 1000;
  else {
    // An HTTP date names its day and month ("Wed, 02 Dec 2026 12:00:00 GMT"); "-5" is no date.
    if (!/^[A-Za-z]{3}/.test(text)) return null;
    const at = Date.parse(text);
    if (Number.isNaN(at)) return null;
    ms = Math.max(0, at - now);
  }
  return Math.min(ms, PushLimits.maxRetryAfterMs);
}

/**
 * The delay before the next delivery of a message delivered `deliveries`
 * times whose last delivery failed: the subscription's delay for it, or the
 * endpoint's `Retry-After` when that is longer.
 */
export function pushRetryDelayMs(
  deliveries: number,
  delays: readonly number[],
  retryAfter: number | null,
): number {
  return Math.max(retryDelayMs(deliveries, delays), retryAfter ?? 0);
}

/**
 * Until when a subscription whose endpoint failed `failures` times in a row
 * waits before it delivers anything more from this queue: the subscription's
 * own delay for that many failures (so a failing endpoint is probed ever less
 * often, up to the last delay), or its `Retry-After` when longer.
 */
export function pushBackoffUntil(
  failures: number,
  delays: readonly number[],
  retryAfter: number | null,
  now: number,
): number {
  return now + pushRetryDelayMs(failures, delays, retryAfter);
}

/**
 * The first claim of each subscription ready to deliver from a shard, given
 * its bound (`limit`) and the claims it holds (`held`): at most its fair
 * part of the shard's `total` fetch slots counting what it holds (so an
 * endpoint that stalls keeps at most its part, never the slots of the
 * others while they have messages to send), within the `free` slots, in
 * order. What is left free after these claims may go to a subscription that
 * took its whole part (it may have more), up to its own bound.
 */
export function fairGrants(
  total: number,
  free: number,
  subs: readonly { limit: number; held: number }[],
): number[] {
  let left = Math.max(0, free);
  const part = Math.max(1, Math.floor(total / Math.max(1, subs.length)));
  return subs.map(({ limit, held }) => {
    const n = Math.max(0, Math.min(limit - held, part - held, left));
    left -= n;
    return n;
  });
}

/** The index of the latency histogram's bucket for `ms` (the last index is +Inf). */
export function latencyBucket(ms: number): number {
  const i = PUSH_LATENCY_BUCKETS_MS.findIndex((le) => ms <= le);
  return i === -1 ? PUSH_LATENCY_BUCKETS_MS.length : i;
}
