/**
 * Requests of the recurring-schedule calls (`PUT/GET/DELETE
 * /v1/schedules/{name}`, `GET /v1/schedules`, `POST …/run`): the name in the
 * path, the PUT body and the list's query. The body is checked as the request
 * arrives (field types, the cron in its time zone, the message as a send
 * checks one against the contract's ceiling); the topic's existence and its
 * own size limit are checked by the Scheduler, which knows the previous config
 * a partial PUT merges with. Every failure is an {@link EdgemqError} with the
 * contract's code, naming the field.
 */
import { checkTimezone, compileCron } from "../cron.ts";
import { EdgemqError, badRequest } from "../errors.ts";
import { Limits } from "../limits.ts";
import {
  DEFAULT_TIMEZONE,
  type ScheduleInput,
  ScheduleLimits,
  type ScheduleMessage,
} from "../schedule.ts";
import { type QueryInput, checkName, intParam, isObject, queryValue } from "./fields.ts";
import { parseMessage } from "./message.ts";

/** Checks a schedule name: the contract's pattern, at most {@link ScheduleLimits.maxNameLength}. */
export function checkScheduleName(name: string | undefined): string {
  if (
    name === undefined ||
    !Limits.namePattern.test(name) ||
    name.length > ScheduleLimits.maxNameLength
  ) {
    throw new EdgemqError(
      "INVALID_NAME",
      `schedule name must match ^[A-Za-z0-9_-]{1,${ScheduleLimits.maxNameLength}}$ (its msgIds, {name}:{fireTimeMs}, fit in ${Limits.maxMsgIdBytes} bytes)`,
    );
  }
  return name;
}

const inputKeys = new Set(["topic", "cron", "timezone", "message", "paused", "schedule"]);

/**
 * Parses the body of `PUT /v1/schedules/{name}`: field types, the cron and
 * time zone (together: a cron is read in its zone), and the message as a send
 * would check it against the largest message any topic takes. The topic's
 * existence and its own size limit are checked by the scheduler, which knows
 * the previous config a partial PUT merges with.
 */
export function parseScheduleInput(body: unknown, now: number): ScheduleInput {
  if (!isObject(body)) throw badRequest('body must be {"topic", "cron", "message", ...}');
  for (const k of Object.keys(body)) if (!inputKeys.has(k)) throw badRequest(`unknown field ${k}`);
  const out: ScheduleInput = {};
  if (body.topic !== undefined) {
    if (typeof body.topic !== "string") throw badRequest("topic must be a topic name");
    out.topic = checkName(body.topic, "topic");
  }
  if (body.timezone !== undefined) out.timezone = checkTimezone(body.timezone);
  if (body.cron !== undefined) {
    compileCron(body.cron, out.timezone ?? DEFAULT_TIMEZONE, now);
    out.cron = (body.cron as string).trim();
  }
  if (body.message !== undefined) {
    out.message = checkScheduleMessage(body.message, Limits.maxMessageBytesCeiling, now);
  }
  if (body.paused !== undefined) {
    if (typeof body.paused !== "boolean") throw badRequest("paused must be a boolean");
    out.paused = body.paused;
  }
  return out;
}

/**
 * Checks a schedule's message as a send checks a message (same codes, e.g.
 * MESSAGE_TOO_LARGE over `maxBytes`), with errors naming `message`. `msgId`,
 * `bornAt` and `deliverAt` are refused: each fire sets the msgId and bornAt
 * (its fire time), and is sent at its time (`delayMs` and `delayLevel` delay
 * each fire's message).
 */
export function checkScheduleMessage(
  message: unknown,
  maxBytes: number,
  now: number,
): ScheduleMessage {
  if (isObject(message)) {
    if (message.msgId !== undefined) {
      throw badRequest("message.msgId is set by each fire ({name}:{fireTimeMs}); leave it out");
    }
    if (message.deliverAt !== undefined) {
      throw badRequest(
        "message.deliverAt is not for schedules: each fire is sent at its time (use delayMs or delayLevel)",
      );
    }
    if (message.bornAt !== undefined) {
      throw badRequest("message.bornAt is set by each fire (its fire time); leave it out");
    }
  }
  try {
    parseMessage(message, { now, maxBytes, newId: () => "schedule-check" });
  } catch (e) {
    if (e instanceof EdgemqError) {
      const { index: _index, ...details } = e.details ?? {};
      throw new EdgemqError(
        e.code,
        e.message.replace(/^messages\[0\]: /, "message: "),
        Object.keys(details).length ? details : undefined,
      );
    }
    throw e;
  }
  return message as ScheduleMessage;
}

/** `GET /v1/schedules?after=NAME&limit=N`: a page of schedules by name. */
export function parseScheduleList(query: QueryInput): { after: string | null; limit: number } {
  const after = queryValue(query, "after");
  return {
    after: after === undefined || after === "" ? null : checkScheduleName(after),
    limit: intParam(
      queryValue(query, "limit"),
      "limit",
      1,
      ScheduleLimits.maxListLimit,
      ScheduleLimits.defaultListLimit,
    ),
  };
}
