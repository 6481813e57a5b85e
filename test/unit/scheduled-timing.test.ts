import { describe, expect, it } from "vitest";
import {
  ALARM_LEAD_MS,
  SCHEDULED_MIN_GAP_MS,
  SOON_HORIZON_MS,
  durableAlarmAt,
  nextAlarmAt,
  scheduledAlarmAt,
} from "../../src/broker/timers/timing.ts";

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

describe("durableAlarmAt", () => {
  const now = 1_000_000;

  it("is null without a timer", () => {
    expect(durableAlarmAt(null, now)).toBeNull();
  });

  it("arms a timer beyond the soon horizon early, by more than nothing and less than the horizon", () => {
    const due = now + SOON_HORIZON_MS + 5000;
    expect(durableAlarmAt(due, now)).toBe(due - ALARM_LEAD_MS);
    expect(ALARM_LEAD_MS).toBeGreaterThan(0);
    expect(ALARM_LEAD_MS).toBeLessThan(SOON_HORIZON_MS);
  });

  it("arms a timer within the horizon at its time (its in-memory timer fires first)", () => {
    expect(durableAlarmAt(now + SOON_HORIZON_MS, now)).toBe(now + SOON_HORIZON_MS);
    expect(durableAlarmAt(now + 1, now)).toBe(now + 1);
    expect(durableAlarmAt(now, now)).toBe(now);
  });
});
