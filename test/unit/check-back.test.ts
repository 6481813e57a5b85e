import { describe, expect, it } from "vitest";
import { settleVerdict } from "../../src/broker/outbound/check-back.ts";
import { CHECK_TIMEOUT_MS, checkLeaseUntil } from "../../src/broker/timers/timing.ts";

describe("settleVerdict", () => {
  it("lets the producer's commit or rollback stand, even on the last check", () => {
    expect(settleVerdict("commit", 1, 15)).toBe("commit");
    expect(settleVerdict("rollback", 15, 15)).toBe("rollback");
    expect(settleVerdict("commit", 15, 15)).toBe("commit");
  });

  it("defers an unknown answer until the last allowed check, then gives up", () => {
    expect(settleVerdict("unknown", 1, 15)).toBe("unknown");
    expect(settleVerdict("unknown", 14, 15)).toBe("unknown");
    expect(settleVerdict("unknown", 15, 15)).toBe("exhausted");
    expect(settleVerdict("unknown", 16, 15)).toBe("exhausted");
    expect(settleVerdict("unknown", 1, 1)).toBe("exhausted");
  });
});

describe("checkLeaseUntil", () => {
  it("holds a claimed check past its timeout, so checks of one half message never overlap", () => {
    expect(checkLeaseUntil(1_000_000)).toBeGreaterThan(1_000_000 + CHECK_TIMEOUT_MS);
  });
});
