import { describe, expect, it } from "vitest";
import { LocalLimiter, perMinuteOf, takeToken } from "../../src/gateway/rate-limit.ts";

describe("token bucket", () => {
  it("lets a new subject burst up to the per-minute rate, then refuses", () => {
    let bucket;
    const oks: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      const t = takeToken(bucket, 3, 1_000);
      bucket = t.bucket;
      oks.push(t.ok);
    }
    expect(oks).toEqual([true, true, true, false]);
  });

  it("refills at rate/60 s and says how long until the next token", () => {
    const empty = { tokens: 0, at: 0 };
    const refused = takeToken(empty, 60, 0);
    expect(refused).toMatchObject({ ok: false, retryAfterMs: 1_000 });
    expect(takeToken(empty, 60, 999).ok).toBe(false);
    expect(takeToken(empty, 60, 1_000).ok).toBe(true);
    expect(takeToken({ tokens: 0.5, at: 0 }, 60, 0).retryAfterMs).toBe(500);
  });

  it("never holds more than one minute's worth", () => {
    const t = takeToken({ tokens: 0, at: 0 }, 10, 3_600_000);
    expect(t.bucket.tokens).toBe(9);
  });

  it("refills nothing when the clock steps back", () => {
    const t = takeToken({ tokens: 0, at: 10_000 }, 60, 5_000);
    expect(t.ok).toBe(false);
    expect(t.bucket).toEqual({ tokens: 0, at: 10_000 });
  });

  it("keeps subjects apart and forgets the least recently used beyond its bound", () => {
    const limiter = new LocalLimiter();
    expect(limiter.take("a", 1, 0).ok).toBe(true);
    expect(limiter.take("a", 1, 0).ok).toBe(false);
    expect(limiter.take("b", 1, 0).ok).toBe(true);
    for (let i = 0; i < 10_000; i++) limiter.take(`k${i}`, 1, 0);
    // "a" was evicted, so it starts full again.
    expect(limiter.take("a", 1, 0).ok).toBe(true);
  });
});

describe("RATE_LIMIT_PER_MINUTE", () => {
  it.each([
    [undefined, 0],
    ["", 0],
    ["0", 0],
    ["off", 0],
    ["-5", 0],
    ["1.5", 0],
    ["120", 120],
    [" 60 ", 60],
  ])("reads %j as %d", (v, n) => {
    expect(perMinuteOf(v)).toBe(n);
  });
});
