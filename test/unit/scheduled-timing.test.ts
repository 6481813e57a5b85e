import { describe, expect, it } from "vitest";
import { SCHEDULED_MIN_GAP_MS, nextAlarmAt, scheduledAlarmAt } from "../../src/broker/timing.ts";

describe("scheduledAlarmAt", () => {
  it("is null when nothing is scheduled", () => {
    expect(scheduledAlarmAt(null, 1000)).toBeNull();
  });

  it("fires a lone message exactly when due", () => {
    expect(scheduledAlarmAt(50_000, 0)).toBe(50_000);
    expect(scheduledAlarmAt(50_000, 50_000 - SCHEDULED_MIN_GAP_MS)).toBe(50_000);
  });

  it("paces a dense stream: no sooner than the gap after the last move", () => {
    expect(scheduledAlarmAt(10_001, 10_000)).toBe(10_000 + SCHEDULED_MIN_GAP_MS);
    expect(scheduledAlarmAt(10_001, 10_000, 25)).toBe(10_025);
    expect(scheduledAlarmAt(9_000, 10_000, 0)).toBe(10_000);
  });

  it("never delays work a bounded batch left behind", () => {
    const now = 10_000;
    expect(nextAlarmAt([scheduledAlarmAt(now - 5, now)], now, true)).toBe(now);
  });
});
