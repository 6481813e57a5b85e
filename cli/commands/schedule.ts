/** `edgemq schedule put|list|get|delete|run|pause|resume`: recurring schedules. */
import type { ScheduleInfo, ScheduleInput, ScheduleMessage } from "../../client/index.ts";
import { type Command, type Context, UsageError } from "../context.ts";
import {
  isoTime,
  keyValues,
  parseDuration,
  parseProperties,
  preview,
  splitList,
  table,
} from "../format.ts";

/** Options that shape the message; they need a body (the message is replaced whole). */
const MESSAGE_OPTIONS = [
  "tag",
  "key",
  "property",
  "sharding-key",
  "delay",
  "delay-level",
  "priority",
  "base64",
];

/** The message the arguments give, or undefined when no body is given (an update keeps its message). */
function messageOf(ctx: Context): ScheduleMessage | undefined {
  const words = ctx.args.positionals.slice(1);
  if (words.length === 0) {
    const given = MESSAGE_OPTIONS.filter((o) => ctx.args.values[o] !== undefined);
    if (given.length) {
      throw new UsageError(
        `--${given[0]} shapes the message: give its body too (the message is replaced whole)`,
      );
    }
    return undefined;
  }
  const m: ScheduleMessage = { body: words.join(" ") };
  const tag = ctx.str("tag");
  if (tag !== undefined) m.tag = tag;
  const keys = splitList(ctx.list("key"));
  if (keys.length) m.keys = keys;
  const props = ctx.list("property");
  if (props.length) m.properties = ctx.parse(() => parseProperties(props));
  const sk = ctx.str("sharding-key");
  if (sk !== undefined) m.shardingKey = sk;
  const delay = ctx.str("delay");
  if (delay !== undefined) m.delayMs = ctx.parse(() => parseDuration(delay));
  const level = ctx.int("delay-level", 1, 18);
  if (level !== undefined) m.delayLevel = level;
  const priority = ctx.int("priority", 0, 9);
  if (priority !== undefined) m.priority = priority;
  if (ctx.flag("base64")) m.encoding = "base64";
  return m;
}

function state(s: ScheduleInfo): string {
  if (s.paused) return "paused";
  return s.nextFireAt === null ? "done" : "active";
}

function lines(s: ScheduleInfo): [string, string | number | null][] {
  return [
    ["schedule", s.schedule],
    ["topic", s.topic],
    ["cron", s.cron],
    ["timezone", s.timezone],
    ["state", state(s)],
    ["next fire", isoTime(s.nextFireAt)],
    ["last fire", isoTime(s.lastFireAt)],
    ["last msgId", s.lastMsgId],
    ["last status", s.lastStatus],
    ["fires", s.fires],
    ["missed fires", s.missedFires],
    ["errors", s.errors],
    ["last error", s.lastError ? `${s.lastError} (${isoTime(s.lastErrorAt)})` : null],
    ["message", preview(s.message.body, s.message.encoding ?? "utf8")],
    ["created", isoTime(s.createdAt)],
    ["updated", isoTime(s.updatedAt)],
  ];
}

/** A command that changes one schedule and prints it. */
function change(verb: "pause" | "resume", summary: string): Command {
  return {
    name: `schedule ${verb}`,
    usage: "<name>",
    summary,
    async run(ctx) {
      const name = ctx.arg(0, "schedule name");
      ctx.atMost(1);
      const s =
        verb === "pause"
          ? await ctx.admin.pauseSchedule(name)
          : await ctx.admin.resumeSchedule(name);
      ctx.print(() => keyValues(lines(s)), s);
    },
  };
}

export const scheduleCommands: Command[] = [
  {
    name: "schedule put",
    usage: "<name> [body] --topic T --cron EXPR [options]",
    summary: "create or update a recurring schedule that sends a message to a topic",
    options: {
      topic: { type: "string" },
      cron: { type: "string" },
      timezone: { type: "string", short: "z" },
      paused: { type: "boolean" },
      tag: { type: "string" },
      key: { type: "string", short: "k", multiple: true },
      property: { type: "string", short: "p", multiple: true },
      "sharding-key": { type: "string", short: "s" },
      delay: { type: "string" },
      "delay-level": { type: "string" },
      priority: { type: "string" },
      base64: { type: "boolean" },
    },
    help: [
      "    --topic T                the topic each fire sends to (required on create)",
      '    --cron EXPR              5 fields minute first ("0 9 * * 1-5") or 6 seconds first ("*/10 * * * * *")',
      "-z, --timezone ZONE          IANA time zone the cron is read in (default UTC), e.g. Europe/Paris",
      "    --paused                 create or leave it paused",
      "    --tag, -k/--key, -p/--property K=V, -s/--sharding-key, --delay DUR, --delay-level N,",
      "    --priority N, --base64   the message's fields, as `edgemq send` takes them (with a body)",
      "The body (the words after the name) is required on create; on update, options left out",
      "keep their value, and a body replaces the whole message. Each fire's msgId is {name}:{fireTimeMs}.",
    ],
    async run(ctx) {
      const name = ctx.arg(0, "schedule name");
      const input: ScheduleInput = {};
      const topic = ctx.str("topic");
      if (topic !== undefined) input.topic = topic;
      const cron = ctx.str("cron");
      if (cron !== undefined) input.cron = cron;
      const timezone = ctx.str("timezone");
      if (timezone !== undefined) input.timezone = timezone;
      if (ctx.flag("paused")) input.paused = true;
      const message = messageOf(ctx);
      if (message) input.message = message;
      if (Object.keys(input).length === 0)
        throw new UsageError("nothing to set: give --topic, --cron and a body");
      const s = await ctx.admin.putSchedule(name, input);
      ctx.print(() => keyValues(lines(s)), s);
    },
  },
  {
    name: "schedule list",
    usage: "",
    summary: "list schedules with their next and last fire",
    async run(ctx) {
      ctx.atMost(0);
      const schedules = await ctx.admin.listSchedules();
      ctx.print(
        () =>
          table(schedules, [
            { header: "SCHEDULE", get: (s) => s.schedule },
            { header: "TOPIC", get: (s) => s.topic },
            { header: "CRON", get: (s) => s.cron },
            { header: "TIMEZONE", get: (s) => s.timezone },
            { header: "STATE", get: (s) => state(s) },
            { header: "NEXT_FIRE", get: (s) => isoTime(s.nextFireAt) },
            { header: "LAST_FIRE", get: (s) => isoTime(s.lastFireAt) },
            { header: "FIRES", get: (s) => s.fires },
            { header: "ERRORS", get: (s) => s.errors },
          ]),
        { schedules },
      );
    },
  },
  {
    name: "schedule get",
    usage: "<name>",
    summary: "show a schedule: config, next and last fire, counts, last error",
    async run(ctx) {
      const name = ctx.arg(0, "schedule name");
      ctx.atMost(1);
      const s = await ctx.admin.getSchedule(name);
      ctx.print(() => keyValues(lines(s)), s);
    },
  },
  {
    name: "schedule delete",
    usage: "<name>",
    summary: "delete a schedule (it sends nothing more)",
    async run(ctx) {
      const name = ctx.arg(0, "schedule name");
      ctx.atMost(1);
      await ctx.admin.deleteSchedule(name);
      ctx.print(() => `deleted schedule ${name}`, { schedule: name, deleted: true });
    },
  },
  {
    name: "schedule run",
    usage: "<name>",
    summary: "send the schedule's message now (msgId {name}:run:{nowMs})",
    async run(ctx) {
      const name = ctx.arg(0, "schedule name");
      ctx.atMost(1);
      const r = await ctx.admin.runSchedule(name);
      ctx.print(
        () =>
          table(
            [r],
            [
              { header: "MSG_ID", get: (x) => x.msgId },
              { header: "QUEUE", get: (x) => x.queue, align: "right" },
              { header: "OFFSET", get: (x) => x.offset, align: "right" },
              { header: "STATUS", get: (x) => x.status },
            ],
          ),
        r,
      );
    },
  },
  change("pause", "pause a schedule's fires"),
  change("resume", "resume a paused schedule from now (fire times passed meanwhile are not sent)"),
];
