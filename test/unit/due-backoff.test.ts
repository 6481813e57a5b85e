/** A kind of timer work that fails waits a growing while before its next try; the others never wait. */
import { describe, expect, it } from "vitest";
import { DueBackoff } from "../../src/broker/timers/due-backoff.ts";
import { DUE_RETRY_MAX_MS, dueRetryDelayMs } from "../../src/broker/timers/timing.ts";

describe("timer work backoff", () => {
  it("doubles the delay per failure in a row, up to a minute", () => {
    expect([1, 2, 3, 4].map(dueRetryDelayMs)).toEqual([1000, 2000, 4000, 8000]);
    expect(dueRetryDelayMs(100)).toBe(DUE_RETRY_MAX_MS);
    expect(dueRetryDelayMs(0)).toBe(1000);
  });

  it("holds back only the kind that failed, until its delay passed or it succeeded", () => {
    const b = new DueBackoff();
    expect(b.failed("scheduled", 10_000)).toBe(11_000);
    expect(b.ready("scheduled", 10_500)).toBe(false);
    expect(b.ready("lapses", 10_500)).toBe(true);
    expect(b.notBefore("scheduled")).toBe(11_000);
    expect(b.notBefore("lapses")).toBeNull();
    expect(b.ready("scheduled", 11_000)).toBe(true);
    expect(b.failed("scheduled", 11_000)).toBe(13_000);
    b.succeeded("scheduled");
    expect(b.ready("scheduled", 11_001)).toBe(true);
    expect(b.failed("scheduled", 20_000)).toBe(21_000);
  });
});
