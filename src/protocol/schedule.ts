/**
 * Recurring schedules on the wire (api.md, "Recurring schedules"): their
 * types and limits, shared by the Worker, the SDK and the CLI; how a PUT
 * merges over the stored config; the msgIds of fires and runs. The request
 * parsers are in requests/schedules.ts.
 */
import { compileCron } from "./cron.ts";
import { badRequest } from "./errors.ts";
import type { MessageInput, SendResult } from "./types.ts";

export const ScheduleLimits = {
  /**
   * Schedule names: the contract's name pattern, at most 100 characters, so
   * that `{name}:run:{nowMs}` fits in a msgId (128 bytes).
   */
  maxNameLength: 100,
  /**
   * Bytes of one PUT body. Stored as one SQLite row (2 MB per row on
   * Cloudflare); a message of the topic's largest size (1 MiB) fits, base64
   * included.
   */
  maxBodyBytes: 1536 * 1024,
  /** Schedules in one page of `GET /v1/schedules`, and the default. */
  maxListLimit: 1000,
  defaultListLimit: 100,
  /**
   * Message bytes in one page of `GET /v1/schedules`: a page stops before it
   * passes this, far below the 32 MiB a Durable Object RPC answer may carry.
   */
  maxListBytes: 8 * 1024 * 1024,
} as const;

/** The default time zone. */
export const DEFAULT_TIMEZONE = "UTC";

/** A schedule's message: a message as sent, less what each fire sets itself. */
export type ScheduleMessage = Omit<MessageInput, "msgId" | "deliverAt">;

/** A schedule's config as stored and answered. */
export interface ScheduleConfig {
  schedule: string;
  topic: string;
  cron: string;
  timezone: string;
  message: ScheduleMessage;
  paused: boolean;
  createdAt: number;
  updatedAt: number;
}

/** A schedule as `GET` answers it: config plus where its fires stand. */
export interface ScheduleInfo extends ScheduleConfig {
  /** The next fire time (Unix ms); null while paused or when the cron never fires again. */
  nextFireAt: number | null;
  /** The fire time of the last message sent (a run's: when it ran); null before the first. */
  lastFireAt: number | null;
  /** The msgId of that message: `{name}:{fireTimeMs}` or `{name}:run:{nowMs}`. */
  lastMsgId: string | null;
  /** Its send status (`stored`, `duplicate` after a retried fire, `expired`, `dropped`, …). */
  lastStatus: SendResult["status"] | null;
  /** Messages sent, fires and runs. */
  fires: number;
  /** Fire times passed while the broker was down (or a fire kept failing), folded into one send. */
  missedFires: number;
  /** Fires and runs that failed. */
  errors: number;
  /** The last failure, `CODE: message`, and when; kept after later successes. */
  lastError: string | null;
  lastErrorAt: number | null;
}

/** What a PUT may set, checked; on create `topic`, `cron` and `message` are required. */
export interface ScheduleInput {
  topic?: string;
  cron?: string;
  timezone?: string;
  message?: ScheduleMessage;
  paused?: boolean;
}

/** A `POST /v1/schedules/{name}/run` answer: the send's result for the one message. */
export interface ScheduleRunResult extends SendResult {
  schedule: string;
}

/**
 * A PUT merged over the previous config (null on create): fields not given
 * keep their value. Throws BAD_REQUEST naming a field a new schedule lacks.
 */
export function mergeSchedule(
  name: string,
  previous: ScheduleConfig | null,
  input: ScheduleInput,
  now: number,
): ScheduleConfig {
  const topic = input.topic ?? previous?.topic;
  const cron = input.cron ?? previous?.cron;
  const message = input.message ?? previous?.message;
  for (const [field, v] of [
    ["topic", topic],
    ["cron", cron],
    ["message", message],
  ] as const) {
    if (v === undefined) throw badRequest(`${field} is required for a new schedule`);
  }
  const timezone = input.timezone ?? previous?.timezone ?? DEFAULT_TIMEZONE;
  // A new zone alone re-reads the stored cron in it: check that pair too.
  if (input.timezone !== undefined && input.cron === undefined) compileCron(cron, timezone, now);
  return {
    schedule: name,
    topic: topic!,
    cron: cron!,
    timezone,
    message: message!,
    paused: input.paused ?? previous?.paused ?? false,
    createdAt: previous?.createdAt ?? now,
    updatedAt: now,
  };
}

/** The msgId of the message a fire at `fireAt` sends. */
export function fireMsgId(name: string, fireAt: number): string {
  return `${name}:${fireAt}`;
}

/** The msgId of the message `POST …/run` sends at `now`. */
export function runMsgId(name: string, now: number): string {
  return `${name}:run:${now}`;
}
