/**
 * Timing maths of recurring schedules (src/schedules/timing.ts) over croner's
 * evaluation (src/protocol/cron.ts): next fires in UTC and in IANA zones
 * across daylight-saving changes, the missed-fire rule, the retry backoff.
 * Pure functions of `now`: no clock is read.
 */
import { describe, expect, it } from "vitest";
import { compileCron, storedCron } from "../../src/protocol/cron.ts";
import {
  MAX_MISSED_COUNTED,
  RETRY_MAX_MS,
  dueFire,
  firstFireAt,
  retryAt,
} from "../../src/schedules/timing.ts";

const t = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The first `n` fire times after `from`, as ISO strings in UTC. */
function fires(cron: string, timezone: string, from: string, n: number): (string | null)[] {
  const spec = storedCron(cron, timezone);
  const out: (string | null)[] = [];
  let at: number | null = t(from);
  for (let i = 0; i < n && at !== null; i++) {
    at = spec.next(at);
    out.push(iso(at));
  }
  return out;
}

describe("next fire", () => {
  it("reads 5 fields minute first, firing on the minute", () => {
    const spec = compileCron("15 9 * * 1-5", "UTC", t("2026-01-01T00:00:00Z"));
    // 2026-01-02 is a Friday, the 3rd and 4th a weekend.
    expect(iso(firstFireAt(spec, t("2026-01-02T09:15:00Z")))).toBe("2026-01-05T09:15:00.000Z");
    expect(iso(firstFireAt(spec, t("2026-01-02T09:14:59.999Z")))).toBe("2026-01-02T09:15:00.000Z");
  });

  it("reads 6 fields seconds first, strictly after now", () => {
    expect(fires("*/10 * * * * *", "UTC", "2026-01-01T00:00:05.500Z", 3)).toEqual([
      "2026-01-01T00:00:10.000Z",
      "2026-01-01T00:00:20.000Z",
      "2026-01-01T00:00:30.000Z",
    ]);
    // Exactly on a fire time: the next one, never the same again.
    expect(fires("*/10 * * * * *", "UTC", "2026-01-01T00:00:10.000Z", 1)).toEqual([
      "2026-01-01T00:00:20.000Z",
    ]);
  });

  it("fires at 9:00 local time in New York on both sides of the March change (EST, then EDT)", () => {
    // 2026-03-08 02:00 EST → 03:00 EDT: 9:00 is 14:00Z before and 13:00Z after.
    expect(fires("0 9 * * *", "America/New_York", "2026-03-07T00:00:00Z", 3)).toEqual([
      "2026-03-07T14:00:00.000Z",
      "2026-03-08T13:00:00.000Z",
      "2026-03-09T13:00:00.000Z",
    ]);
  });

  it("moves a fixed-time fire in the Paris spring gap to the first valid time after it", () => {
    // 2026-03-29 02:00 CET → 03:00 CEST: 02:30 does not exist that day; it fires at 03:00 CEST.
    expect(fires("30 2 * * *", "Europe/Paris", "2026-03-27T12:00:00Z", 3)).toEqual([
      "2026-03-28T01:30:00.000Z", // 02:30 CET
      "2026-03-29T01:00:00.000Z", // 03:00 CEST
      "2026-03-30T00:30:00.000Z", // 02:30 CEST
    ]);
  });

  it("skips the Paris spring gap for an interval schedule: no fire at a local time that does not exist", () => {
    expect(fires("0 */30 * * * *", "Europe/Paris", "2026-03-29T00:00:00Z", 4)).toEqual([
      "2026-03-29T00:30:00.000Z", // 01:30 CET
      "2026-03-29T01:00:00.000Z", // 03:00 CEST (02:00 and 02:30 do not exist)
      "2026-03-29T01:30:00.000Z", // 03:30 CEST
      "2026-03-29T02:00:00.000Z", // 04:00 CEST
    ]);
  });

  it("fires a fixed time once when the Paris autumn change repeats it, an interval schedule on both", () => {
    // 2026-10-25 03:00 CEST → 02:00 CET: 02:00–02:59 happens twice.
    expect(fires("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00Z", 2)).toEqual([
      "2026-10-25T00:30:00.000Z", // 02:30 CEST, and not again at 02:30 CET
      "2026-10-26T01:30:00.000Z",
    ]);
    expect(fires("0 */30 * * * *", "Europe/Paris", "2026-10-25T00:00:00Z", 5)).toEqual([
      "2026-10-25T00:30:00.000Z", // 02:30 CEST
      "2026-10-25T01:00:00.000Z", // 02:00 CET
      "2026-10-25T01:30:00.000Z", // 02:30 CET
      "2026-10-25T02:00:00.000Z", // 03:00 CET
      "2026-10-25T02:30:00.000Z",
    ]);
  });

  it("finds the last fire at or before a time, that time included", () => {
    const spec = storedCron("0 0 12 1 1 *", "UTC");
    expect(iso(spec.latestAtOrBefore(t("2026-01-01T12:00:00Z")))).toBe("2026-01-01T12:00:00.000Z");
    expect(iso(spec.latestAtOrBefore(t("2026-01-01T11:59:59.999Z")))).toBe(
      "2025-01-01T12:00:00.000Z",
    );
  });
});

describe("the missed-fire rule (dueFire)", () => {
  const every10s = storedCron("*/10 * * * * *", "UTC");
  const pending = t("2026-01-01T00:00:10Z");

  it("sends nothing before the pending fire time (an early alarm)", () => {
    expect(dueFire(every10s, pending, pending - 1)).toBeNull();
  });

  it("sends the pending fire on time and goes on to the next", () => {
    expect(dueFire(every10s, pending, pending + 15)).toEqual({
      fireAt: pending,
      missed: 0,
      nextAt: t("2026-01-01T00:00:20Z"),
    });
  });

  it("keeps the fire time (and so the msgId) when a crashed fire is retried within its period", () => {
    const first = dueFire(every10s, pending, pending + 5);
    const retried = dueFire(every10s, pending, pending + 4_000);
    expect(retried!.fireAt).toBe(first!.fireAt);
  });

  it("after downtime sends one fire, for the latest time due, and goes on from now", () => {
    // Down from 00:00:05 to 00:01:03: six fire times passed (00:00:10 … 00:01:00); one is
    // sent, for the latest, and the five before it are folded into it.
    const now = t("2026-01-01T00:01:03Z");
    expect(dueFire(every10s, pending, now)).toEqual({
      fireAt: t("2026-01-01T00:01:00Z"),
      missed: 5,
      nextAt: t("2026-01-01T00:01:10Z"),
    });
  });

  it("counts at most MAX_MISSED_COUNTED missed fires after a long downtime", () => {
    const every1s = storedCron("* * * * * *", "UTC");
    const due = dueFire(every1s, pending, pending + 86_400_000)!;
    expect(due.fireAt).toBe(pending + 86_400_000);
    expect(due.missed).toBe(MAX_MISSED_COUNTED);
    expect(due.nextAt).toBe(pending + 86_401_000);
  });

  it("follows the zone after downtime across the Paris spring change", () => {
    const daily = storedCron("30 2 * * *", "Europe/Paris");
    // Pending 02:30 CET on the 28th; back at 08:00 CEST on the 29th: the 03:00 CEST fire is the latest.
    const due = dueFire(daily, t("2026-03-28T01:30:00Z"), t("2026-03-29T06:00:00Z"))!;
    expect(iso(due.fireAt)).toBe("2026-03-29T01:00:00.000Z");
    expect(due.missed).toBe(1);
    expect(iso(due.nextAt)).toBe("2026-03-30T00:30:00.000Z");
  });
});

describe("retryAt", () => {
  it("retries after 1 s, doubling, at most a minute", () => {
    expect(retryAt(0, 1)).toBe(1000);
    expect(retryAt(0, 2)).toBe(2000);
    expect(retryAt(0, 3)).toBe(4000);
    expect(retryAt(0, 7)).toBe(RETRY_MAX_MS);
    expect(retryAt(5, 1000)).toBe(5 + RETRY_MAX_MS);
  });
});
