import { describe, expect, it } from "vitest";
import {
  RETENTION_SWEEP_INTERVAL_MS,
  exhausted,
  nextAlarmAt,
  retentionCutoff,
  retentionDueAt,
  retryDelayMs,
} from "../../src/broker/timers/timing.ts";
import { DefaultRetryDelaysMs } from "../../src/protocol/limits.ts";

describe("retryDelayMs", () => {
  it("waits the group's first delay after the first failed delivery", () => {
    expect(retryDelayMs(1, [100, 200, 300])).toBe(100);
  });

  it("indexes the list by failure count", () => {
    expect(retryDelayMs(2, [100, 200, 300])).toBe(200);
    expect(retryDelayMs(3, [100, 200, 300])).toBe(300);
  });

  it("repeats the last delay once the list runs out", () => {
    expect(retryDelayMs(4, [100, 200, 300])).toBe(300);
    expect(retryDelayMs(1000, [100, 200, 300])).toBe(300);
  });

  it("treats zero deliveries like the first failure", () => {
    expect(retryDelayMs(0, [100, 200])).toBe(100);
  });

  it("retries at once when the group has no delays", () => {
    expect(retryDelayMs(3, [])).toBe(0);
  });

  it("follows RocketMQ's levels from 10 s on by default", () => {
    expect(retryDelayMs(1, DefaultRetryDelaysMs)).toBe(10_000);
    expect(retryDelayMs(2, DefaultRetryDelaysMs)).toBe(30_000);
    expect(retryDelayMs(3, DefaultRetryDelaysMs)).toBe(60_000);
    expect(retryDelayMs(16, DefaultRetryDelaysMs)).toBe(7_200_000);
    expect(retryDelayMs(17, DefaultRetryDelaysMs)).toBe(7_200_000);
  });
});

describe("exhausted", () => {
  it("allows maxReconsumeTimes + 1 deliveries", () => {
    expect(exhausted(1, 2)).toBe(false);
    expect(exhausted(2, 2)).toBe(false);
    expect(exhausted(3, 2)).toBe(true);
  });

  it("dead-letters after the first failure when maxReconsumeTimes is 0", () => {
    expect(exhausted(1, 0)).toBe(true);
  });

  it("allows 17 deliveries with the default of 16", () => {
    expect(exhausted(16, 16)).toBe(false);
    expect(exhausted(17, 16)).toBe(true);
  });
});

describe("nextAlarmAt", () => {
  const now = 1_000_000;

  it("is null when nothing is pending", () => {
    expect(nextAlarmAt([], now)).toBeNull();
    expect(nextAlarmAt([null, undefined, null], now)).toBeNull();
  });

  it("picks the earliest timer", () => {
    expect(nextAlarmAt([now + 500, null, now + 100, now + 900], now)).toBe(now + 100);
  });

  it("never arms in the past: an overdue timer fires now", () => {
    expect(nextAlarmAt([now - 5000, now + 100], now)).toBe(now);
  });

  it("fires again at once when a bounded batch left work behind", () => {
    expect(nextAlarmAt([now + 5000], now, true)).toBe(now);
    expect(nextAlarmAt([], now, true)).toBe(now);
  });
});

describe("retentionDueAt", () => {
  it("is null for an empty queue", () => {
    expect(retentionDueAt(null, 60_000, 0)).toBeNull();
  });

  it("is when the oldest message passes retention", () => {
    expect(retentionDueAt(10_000, 60_000, 0)).toBe(70_000);
  });

  it("is never sooner than one sweep interval after the last sweep", () => {
    expect(retentionDueAt(10_000, 1000, 50_000)).toBe(50_000 + RETENTION_SWEEP_INTERVAL_MS);
  });
});

describe("retentionCutoff", () => {
  it("is now minus the retention", () => {
    expect(retentionCutoff(100_000, 30_000)).toBe(70_000);
  });
});
