/**
 * The parse function of `PUT /v1/schedules/{name}` (src/protocol/schedule.ts):
 * every bad field is a BAD_REQUEST (or the send's own code for a bad
 * message) that names it; a partial PUT merges over the previous config.
 */
import { describe, expect, it } from "vitest";
import { EdgemqError } from "../../src/protocol/errors.ts";
import {
  checkScheduleName,
  parseScheduleInput,
  parseScheduleList,
} from "../../src/protocol/requests/schedules.ts";
import { mergeSchedule } from "../../src/protocol/schedule.ts";

const NOW = Date.parse("2026-06-01T00:00:00Z");

/** The error a parse throws, as `{code, message}`. */
function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof EdgemqError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error("expected a refusal");
}

const ok = { topic: "orders", cron: "*/10 * * * * *", message: { body: "tick" } };

describe("parseScheduleInput", () => {
  it("accepts the contract's body, with 5 or 6 cron fields and an IANA zone", () => {
    expect(parseScheduleInput({ ...ok, timezone: "Europe/Paris", paused: false }, NOW)).toEqual({
      ...ok,
      timezone: "Europe/Paris",
      paused: false,
    });
    expect(parseScheduleInput({ ...ok, cron: " 0 9 * * 1-5 " }, NOW).cron).toBe("0 9 * * 1-5");
  });

  it.each([
    ["* * * *", /cron must have 5 fields .* got 4/],
    ["* * * * * * *", /got 7/],
    ["@daily", /got 1/],
    ["61 * * * *", /cron "61 \* \* \* \*" is not valid: Invalid value for minute: 61/],
    ["*/0 * * * *", /cron .* is not valid/],
    ["0 0 30 2 *", /cron "0 0 30 2 \*" never fires/],
    ["", /cron must be a cron expression/],
  ])("refuses the cron %j with BAD_REQUEST naming the field", (cron, why) => {
    const r = refusal(() => parseScheduleInput({ ...ok, cron }, NOW));
    expect(r.code).toBe("BAD_REQUEST");
    expect(r.message).toMatch(why);
  });

  it.each(["Mars/Olympus_Mons", "+01:00", "Europe/Paris; drop", "", "utc/../x"])(
    "refuses the time zone %j with BAD_REQUEST naming the field",
    (timezone) => {
      const r = refusal(() => parseScheduleInput({ ...ok, timezone }, NOW));
      expect(r.code).toBe("BAD_REQUEST");
      expect(r.message).toMatch(/^timezone /);
    },
  );

  it("refuses a message as a send would, naming message", () => {
    expect(refusal(() => parseScheduleInput({ ...ok, message: { tag: "x" } }, NOW))).toEqual({
      code: "BAD_REQUEST",
      message: "message: body is required and must be a string",
    });
    expect(
      refusal(() => parseScheduleInput({ ...ok, message: { body: "x", priority: 12 } }, NOW)),
    ).toEqual({ code: "BAD_REQUEST", message: "message: priority must be an integer from 0 to 9" });
    const big = { body: "x".repeat(1024 * 1024 + 1) };
    expect(refusal(() => parseScheduleInput({ ...ok, message: big }, NOW)).code).toBe(
      "MESSAGE_TOO_LARGE",
    );
  });

  it("refuses what each fire sets itself: msgId, deliverAt, bornAt", () => {
    for (const extra of [{ msgId: "mine" }, { deliverAt: NOW + 1000 }, { bornAt: NOW }]) {
      const r = refusal(() => parseScheduleInput({ ...ok, message: { body: "x", ...extra } }, NOW));
      expect(r.code).toBe("BAD_REQUEST");
      expect(r.message).toMatch(/^message\./);
    }
  });

  it("refuses unknown fields, a bad topic name and a non-boolean paused", () => {
    expect(refusal(() => parseScheduleInput({ ...ok, every: "1m" }, NOW)).message).toBe(
      "unknown field every",
    );
    expect(refusal(() => parseScheduleInput({ ...ok, topic: "no spaces" }, NOW)).code).toBe(
      "INVALID_NAME",
    );
    expect(refusal(() => parseScheduleInput({ ...ok, paused: "yes" }, NOW)).message).toBe(
      "paused must be a boolean",
    );
    expect(refusal(() => parseScheduleInput([ok], NOW)).code).toBe("BAD_REQUEST");
  });
});

describe("schedule names", () => {
  it("takes the contract's pattern up to 100 characters, so msgIds fit in 128 bytes", () => {
    expect(checkScheduleName("a".repeat(100))).toBe("a".repeat(100));
    expect(refusal(() => checkScheduleName("a".repeat(101))).code).toBe("INVALID_NAME");
    expect(refusal(() => checkScheduleName("a:b")).code).toBe("INVALID_NAME");
  });
});

describe("parseScheduleList", () => {
  it("reads after and limit, with defaults, and refuses a bad limit or cursor", () => {
    expect(parseScheduleList({})).toEqual({ after: null, limit: 100 });
    expect(parseScheduleList({ after: "nightly", limit: "5" })).toEqual({
      after: "nightly",
      limit: 5,
    });
    expect(refusal(() => parseScheduleList({ limit: "1001" })).code).toBe("BAD_REQUEST");
    expect(refusal(() => parseScheduleList({ after: "a b" })).code).toBe("INVALID_NAME");
  });
});

describe("mergeSchedule", () => {
  const previous = mergeSchedule("s", null, { ...ok, timezone: "Europe/Paris" }, NOW);

  it("defaults the zone to UTC and paused to false on create, and requires topic, cron and message", () => {
    const created = mergeSchedule("s", null, ok, NOW);
    expect(created).toMatchObject({ schedule: "s", timezone: "UTC", paused: false });
    expect(created.createdAt).toBe(NOW);
    for (const field of ["topic", "cron", "message"] as const) {
      const { [field]: _gone, ...rest } = ok;
      expect(refusal(() => mergeSchedule("s", null, rest, NOW))).toEqual({
        code: "BAD_REQUEST",
        message: `${field} is required for a new schedule`,
      });
    }
  });

  it("keeps what a partial PUT leaves out", () => {
    const paused = mergeSchedule("s", previous, { paused: true }, NOW + 5);
    expect(paused).toEqual({ ...previous, paused: true, updatedAt: NOW + 5 });
  });
});
