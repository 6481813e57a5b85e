/**
 * Cron expressions and IANA time zones of recurring schedules, checked and
 * evaluated with croner (npm `croner`).
 *
 * Why croner: it has no dependencies and no Node built-ins (it runs as is in
 * workerd, browsers and Node), reads time zones through `Intl.DateTimeFormat`
 * (workerd ships full ICU data), takes exactly the contract's two forms with
 * `mode: "5-or-6-parts"` (5 fields minute first, 6 fields seconds first),
 * walks both forward (`nextRun`) and backward (`previousRuns`, which the
 * missed-fire rule needs) and handles daylight-saving changes as Vixie cron
 * does (below). cron-parser was the other maintained candidate: it needs
 * luxon and ships as CommonJS with a file parser importing `fs`;
 * cron-schedule has no time zones.
 *
 * Daylight-saving changes (croner's rule, pinned by test/unit/schedule-timing.test.ts):
 * - a fixed-time job (seconds, minutes and hours each one value, `30 2 * * *`)
 *   whose local time falls in a spring-forward gap fires at the first valid
 *   time after it, and fires once when a fall-back repeats its time;
 * - any other job (`0 *\/30 * * * *`) fires at every local time that exists:
 *   it skips the times in a gap and fires on both occurrences of a repeated one.
 *
 * No `cloudflare:*` imports: the SDK and the CLI may check expressions too.
 */
import { Cron, type CronOptions } from "croner";
import { badRequest } from "./errors.ts";

/** A checked cron expression in its time zone, evaluated on Unix milliseconds. */
export interface CronSpec {
  readonly cron: string;
  readonly timezone: string;
  /** The first fire time strictly after `after`, or null when the expression never fires again. */
  next(after: number): number | null;
  /** The last fire time at or before `at`, or null when there is none. */
  latestAtOrBefore(at: number): number | null;
}

/** Fields in a cron expression: 5 (minute first) or 6 (seconds first). */
export const CRON_FIELDS = [5, 6] as const;
/** Longest cron expression and time zone name accepted. */
export const MAX_CRON_LENGTH = 256;
export const MAX_TIMEZONE_LENGTH = 64;

/** Only the shapes of IANA names (`UTC`, `Europe/Paris`, `America/Argentina/Buenos_Aires`, `Etc/GMT+1`); never offsets like `+01:00`. */
const TIMEZONE_SHAPE = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/;

/**
 * Checks an IANA time zone name: its shape, then that the runtime's ICU data
 * knows it. Answers the name as given. Throws BAD_REQUEST naming `timezone`.
 */
export function checkTimezone(timezone: unknown): string {
  if (typeof timezone !== "string" || timezone.length === 0) {
    throw badRequest("timezone must be an IANA time zone name such as UTC or Europe/Paris");
  }
  if (timezone.length > MAX_TIMEZONE_LENGTH || !TIMEZONE_SHAPE.test(timezone)) {
    throw badRequest(
      `timezone ${JSON.stringify(timezone.slice(0, MAX_TIMEZONE_LENGTH))} is not an IANA time zone name`,
    );
  }
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw badRequest(`timezone ${JSON.stringify(timezone)} is not a known IANA time zone`);
  }
  return timezone;
}

/**
 * Checks a cron expression (5 or 6 fields, croner's syntax within them:
 * numbers, names, `*`, `,`, `-`, `/`, `?`, `L`, `W`, `#`) in a time zone
 * that {@link checkTimezone} accepted, and answers it compiled. Throws
 * BAD_REQUEST naming `cron` for a bad expression, or one that never fires
 * after `now` (`0 0 30 2 *`).
 */
export function compileCron(cron: unknown, timezone: string, now: number): CronSpec {
  if (typeof cron !== "string" || cron.trim().length === 0) {
    throw badRequest('cron must be a cron expression such as "*/10 * * * * *" or "0 9 * * 1-5"');
  }
  if (cron.length > MAX_CRON_LENGTH) {
    throw badRequest(`cron is longer than ${MAX_CRON_LENGTH} characters`);
  }
  const fields = cron.trim().split(/\s+/).length;
  if (!(CRON_FIELDS as readonly number[]).includes(fields)) {
    throw badRequest(
      `cron must have 5 fields (minute hour day month weekday) or 6 (second first); got ${fields}`,
    );
  }
  let job: Cron;
  try {
    job = new Cron(cron, cronOptions(timezone));
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^CronPattern: /, "") : String(e);
    throw badRequest(`cron ${JSON.stringify(cron)} is not valid: ${why}`);
  }
  const spec = specOf(cron, timezone, job);
  if (spec.next(now) === null) throw badRequest(`cron ${JSON.stringify(cron)} never fires`);
  return spec;
}

/**
 * Compiles an expression already checked by {@link compileCron} (a stored
 * schedule's), without the checks' cost.
 */
export function storedCron(cron: string, timezone: string): CronSpec {
  return specOf(cron, timezone, new Cron(cron, cronOptions(timezone)));
}

/** Zones that are UTC under another name. */
const UTC_NAMES = new Set([
  "UTC",
  "Etc/UTC",
  "Etc/UCT",
  "UCT",
  "Etc/GMT",
  "GMT",
  "Etc/Zulu",
  "Zulu",
  "Etc/Universal",
  "Universal",
]);

/**
 * croner's options for a zone. UTC is given as a fixed offset: croner then
 * computes with Date.UTC instead of formatting every candidate time through
 * Intl, about ten times faster (UTC is the default zone, and the alarm
 * evaluates each due schedule's cron).
 */
function cronOptions(timezone: string): CronOptions {
  return UTC_NAMES.has(timezone)
    ? { utcOffset: 0, mode: "5-or-6-parts" }
    : { timezone, mode: "5-or-6-parts" };
}

function specOf(cron: string, timezone: string, job: Cron): CronSpec {
  return {
    cron,
    timezone,
    next(after) {
      return job.nextRun(new Date(after))?.getTime() ?? null;
    },
    latestAtOrBefore(at) {
      // previousRuns answers times strictly before its reference: at + 1 ms includes `at`.
      return job.previousRuns(1, new Date(at + 1))[0]?.getTime() ?? null;
    },
  };
}
