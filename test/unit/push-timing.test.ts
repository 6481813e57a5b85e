/**
 * The timing and sizing maths of push deliveries (src/broker/timers/push-timing.ts):
 * each queue's share of maxConcurrency, one probe while failing, Retry-After
 * read and capped, retry delays and back-off, the fair parts of a shard's
 * fetch slots, and the latency histogram's buckets.
 */
import { describe, expect, it } from "vitest";
import {
  PUSH_CLAIM_SLACK_MS,
  fairGrants,
  latencyBucket,
  pushBackoffUntil,
  pushClaimMs,
  pushLimit,
  pushRetryDelayMs,
  pushShare,
  retryAfterMs,
} from "../../src/broker/timers/push-timing.ts";

describe("pushShare", () => {
  it("splits maxConcurrency over the queues, the remainder to the lowest", () => {
    expect([0, 1, 2, 3].map((q) => pushShare(10, 4, q))).toEqual([3, 3, 2, 2]);
    expect([0, 1].map((q) => pushShare(4, 2, q))).toEqual([2, 2]);
    expect(pushShare(8, 1, 0)).toBe(8);
  });

  it("gives every queue at least one, so no queue is never delivered", () => {
    expect([0, 1, 2, 3].map((q) => pushShare(2, 4, q))).toEqual([1, 1, 1, 1]);
  });
});

describe("pushLimit", () => {
  it("is the share while healthy and one probe while the endpoint fails", () => {
    expect(pushLimit(6, 0)).toBe(6);
    expect(pushLimit(6, 1)).toBe(1);
    expect(pushLimit(6, 40)).toBe(1);
  });
});

describe("retryAfterMs", () => {
  const now = Date.UTC(2026, 11, 2, 12, 0, 0);
  it("reads delta-seconds and HTTP dates", () => {
    expect(retryAfterMs("3", now)).toBe(3000);
    expect(retryAfterMs(" 0 ", now)).toBe(0);
    expect(retryAfterMs(new Date(now + 90_000).toUTCString(), now)).toBe(90_000);
    expect(retryAfterMs(new Date(now - 90_000).toUTCString(), now)).toBe(0);
  });

  it("ignores what it cannot read and caps at an hour", () => {
    expect(retryAfterMs(null, now)).toBeNull();
    expect(retryAfterMs("soon", now)).toBeNull();
    expect(retryAfterMs("-5", now)).toBeNull();
    expect(retryAfterMs("999999", now)).toBe(3_600_000);
  });
});

describe("retry delays and back-off", () => {
  it("uses the subscription's delay for the delivery count, or a longer Retry-After", () => {
    const delays = [100, 1000, 5000];
    expect(pushRetryDelayMs(1, delays, null)).toBe(100);
    expect(pushRetryDelayMs(2, delays, null)).toBe(1000);
    expect(pushRetryDelayMs(9, delays, null)).toBe(5000);
    expect(pushRetryDelayMs(1, delays, 2000)).toBe(2000);
    expect(pushRetryDelayMs(3, delays, 2000)).toBe(5000);
  });

  it("backs a failing endpoint off ever longer with its failures in a row", () => {
    const delays = [100, 1000, 5000];
    expect(pushBackoffUntil(1, delays, null, 1000)).toBe(1100);
    expect(pushBackoffUntil(2, delays, null, 1000)).toBe(2000);
    expect(pushBackoffUntil(50, delays, null, 1000)).toBe(6000);
    expect(pushBackoffUntil(1, delays, 30_000, 1000)).toBe(31_000);
  });

  it("holds a claim past the delivery's timeout", () => {
    expect(pushClaimMs(10_000)).toBe(10_000 + PUSH_CLAIM_SLACK_MS);
  });
});

describe("fairGrants", () => {
  it("gives each subscription its part of the slots, counting what it holds", () => {
    expect(
      fairGrants(6, 6, [
        { limit: 8, held: 0 },
        { limit: 8, held: 0 },
      ]),
    ).toEqual([3, 3]);
    // A stalled one holding its part gets nothing more; the other its part.
    expect(
      fairGrants(6, 3, [
        { limit: 8, held: 3 },
        { limit: 8, held: 0 },
      ]),
    ).toEqual([0, 3]);
  });

  it("never passes a subscription's bound or the free slots", () => {
    expect(fairGrants(6, 6, [{ limit: 2, held: 1 }])).toEqual([1]);
    expect(fairGrants(6, 2, [{ limit: 8, held: 0 }])).toEqual([2]);
    expect(fairGrants(6, 6, [{ limit: 8, held: 7 }])).toEqual([0]);
  });

  it("gives one each when there are more subscriptions than slots, while slots last", () => {
    const subs = Array.from({ length: 8 }, () => ({ limit: 4, held: 0 }));
    expect(fairGrants(6, 6, subs)).toEqual([1, 1, 1, 1, 1, 1, 0, 0]);
  });
});

describe("latencyBucket", () => {
  it("finds the first bucket whose bound holds the latency, +Inf past the last", () => {
    expect(latencyBucket(0)).toBe(0);
    expect(latencyBucket(5)).toBe(0);
    expect(latencyBucket(6)).toBe(1);
    expect(latencyBucket(10_000)).toBe(10);
    expect(latencyBucket(10_001)).toBe(11);
  });
});
