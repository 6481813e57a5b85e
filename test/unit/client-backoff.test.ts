import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../client/backoff.ts";

describe("backoffDelay", () => {
  it("starts at the base delay when the random draw is at its top", () => {
    expect(backoffDelay(0, 1, { baseMs: 100, jitter: 0.5 })).toBe(100);
  });

  it("doubles the ceiling with each attempt", () => {
    const ceilings = [0, 1, 2, 3, 4].map((a) => backoffDelay(a, 1, { baseMs: 100, maxMs: 1e9 }));
    expect(ceilings).toEqual([100, 200, 400, 800, 1600]);
  });

  it("never exceeds maxMs, however many attempts", () => {
    expect(backoffDelay(10, 1, { baseMs: 100, maxMs: 5000 })).toBe(5000);
    expect(backoffDelay(10_000, 1, { baseMs: 100, maxMs: 5000 })).toBe(5000);
  });

  it("keeps the fixed part of the delay when the random draw is zero", () => {
    expect(backoffDelay(3, 0, { baseMs: 100, jitter: 0.5 })).toBe(400);
    expect(backoffDelay(3, 0, { baseMs: 100, jitter: 1 })).toBe(0);
  });

  it("is exact without jitter", () => {
    expect(backoffDelay(2, 0.123, { baseMs: 50, jitter: 0 })).toBe(200);
  });

  it("spreads delays between half the ceiling and the ceiling by default", () => {
    for (const r of [0, 0.25, 0.5, 0.75, 0.999]) {
      const d = backoffDelay(4, r);
      expect(d).toBeGreaterThanOrEqual(800);
      expect(d).toBeLessThanOrEqual(1600);
    }
  });

  it("grows monotonically with the random draw", () => {
    expect(backoffDelay(2, 0.2)).toBeLessThan(backoffDelay(2, 0.8));
  });

  it("honours a custom growth factor", () => {
    expect(backoffDelay(2, 1, { baseMs: 10, factor: 3 })).toBe(90);
  });

  it("treats a negative or fractional attempt as the nearest whole attempt at or above zero", () => {
    expect(backoffDelay(-5, 1, { baseMs: 100 })).toBe(100);
    expect(backoffDelay(1.7, 1, { baseMs: 100 })).toBe(200);
  });
});
