/** `edgemq group …` (consumer groups) and `edgemq offset …` (their positions). */
import type { GroupConfig, GroupConfigInput, GroupDetails } from "../../client/index.ts";
import { type Command, type Context, UsageError } from "../context.ts";
import {
  formatDuration,
  isoTime,
  keyValues,
  parseDuration,
  parseTime,
  splitList,
  table,
} from "../format.ts";

interface Member {
  clientId: string;
  topics: string[];
  lastSeen: number;
}

type Described = GroupDetails & { members?: Member[] };

/** One row per (topic, queue) of a group's progress. */
function lagRows(g: Described) {
  return Object.keys(g.topics)
    .sort()
    .flatMap((topic) => (g.topics[topic] ?? []).map((s) => ({ topic, ...s })));
}

function groupInput(ctx: Context): GroupConfigInput {
  const input: GroupConfigInput = {};
  const max = ctx.int("max-reconsume-times", 0, 1000);
  if (max !== undefined) input.maxReconsumeTimes = max;
  if (ctx.flag("orderly") && ctx.flag("concurrent"))
    throw new UsageError("give --orderly or --concurrent, not both");
  if (ctx.flag("orderly")) input.orderly = true;
  if (ctx.flag("concurrent")) input.orderly = false;
  const delays = splitList(ctx.list("retry-delays"));
  if (delays.length) input.retryDelaysMs = ctx.parse(() => delays.map(parseDuration));
  return input;
}

function configLines(g: GroupConfig): [string, string | number][] {
  return [
    ["group", g.group],
    ["mode", g.orderly ? "orderly" : "concurrent"],
    ["max reconsume", g.maxReconsumeTimes],
    ["retry delays", g.retryDelaysMs.map(formatDuration).join(" ")],
  ];
}

function put(verb: "create" | "update"): Command {
  return {
    name: `group ${verb}`,
    usage: "<group> [options]",
    summary:
      verb === "create"
        ? "create a consumer group (or update it: same call)"
        : "change a consumer group's config",
    options: {
      "max-reconsume-times": { type: "string" },
      orderly: { type: "boolean" },
      concurrent: { type: "boolean" },
      "retry-delays": { type: "string", multiple: true },
    },
    help: [
      "    --max-reconsume-times N  deliveries before the DLQ is N + 1 (default 16)",
      "    --orderly | --concurrent one message per sharding key at a time, or not (default concurrent)",
      "    --retry-delays D,D,...   backoff per attempt, e.g. 10s,30s,1m (default RocketMQ's levels from 10s)",
    ],
    async run(ctx) {
      const name = ctx.arg(0, "group name");
      ctx.atMost(1);
      const g = await ctx.admin.createGroup(name, groupInput(ctx));
      ctx.print(() => keyValues(configLines(g)), g);
    },
  };
}

export const groupCommands: Command[] = [
  put("create"),
  put("update"),
  {
    name: "group list",
    usage: "",
    summary: "list consumer groups",
    async run(ctx) {
      ctx.atMost(0);
      const { groups } = (await ctx.request("GET", "/v1/groups")) as { groups: GroupConfig[] };
      ctx.print(
        () =>
          table(groups, [
            { header: "GROUP", get: (g) => g.group },
            { header: "MODE", get: (g) => (g.orderly ? "orderly" : "concurrent") },
            { header: "MAX_RECONSUME", get: (g) => g.maxReconsumeTimes },
            { header: "CREATED", get: (g) => isoTime(g.createdAt) },
          ]),
        { groups },
      );
    },
  },
  {
    name: "group describe",
    usage: "<group>",
    summary: "show a group's lag per topic and queue, its members and config",
    async run(ctx) {
      const name = ctx.arg(0, "group name");
      ctx.atMost(1);
      const g = (await ctx.admin.getGroup(name)) as Described;
      const rows = lagRows(g);
      const total = rows.reduce((n, r) => n + r.lag, 0);
      const members = g.members ?? [];
      ctx.print(
        () =>
          [
            keyValues([...configLines(g), ["total lag", total], ["members", members.length]]),
            "",
            table(rows, [
              { header: "TOPIC", get: (r) => r.topic },
              { header: "QUEUE", get: (r) => r.queue },
              { header: "OFFSET", get: (r) => r.offset },
              { header: "MAX_OFFSET", get: (r) => r.maxOffset },
              { header: "LAG", get: (r) => r.lag },
              { header: "INFLIGHT", get: (r) => r.inflight },
              { header: "RETRYING", get: (r) => r.retrying },
              { header: "DLQ", get: (r) => r.dlq },
            ]),
            ...(members.length
              ? [
                  "",
                  table(members, [
                    { header: "MEMBER", get: (m) => m.clientId },
                    { header: "TOPICS", get: (m) => m.topics.join(",") },
                    { header: "LAST_HEARTBEAT", get: (m) => isoTime(m.lastSeen) },
                  ]),
                ]
              : []),
          ].join("\n"),
        g,
      );
    },
  },
  {
    name: "group delete",
    usage: "<group>",
    summary: "delete a consumer group's config and membership",
    async run(ctx) {
      const name = ctx.arg(0, "group name");
      ctx.atMost(1);
      await ctx.request("DELETE", `/v1/groups/${encodeURIComponent(name)}`);
      ctx.print(() => `deleted group ${name}`, { group: name, deleted: true });
    },
  },
];

/** `<group> <topic>` as positionals, or `--group`/`--topic`. */
function groupAndTopic(ctx: Context): { group: string; topic: string } {
  const group = ctx.str("group") ?? ctx.args.positionals[0];
  const topic = ctx.str("topic") ?? ctx.args.positionals[ctx.str("group") === undefined ? 1 : 0];
  if (!group) throw new UsageError("missing group");
  if (!topic) throw new UsageError("missing topic");
  return { group, topic };
}

export const offsetCommands: Command[] = [
  {
    name: "offset reset",
    usage: "<group> <topic> (--to-time TIME | --to earliest|latest)",
    summary: "move a group's offsets on a topic to a point in time, or to either end",
    options: {
      group: { type: "string", short: "g" },
      topic: { type: "string" },
      "to-time": { type: "string" },
      to: { type: "string" },
    },
    help: [
      "    --to-time TIME   first message stored at or after TIME: Unix ms, ISO 8601, now, -15m",
      "    --to WHERE       earliest | latest",
      "Messages the group has in flight are handed out again from the new position.",
    ],
    async run(ctx) {
      const { group, topic } = groupAndTopic(ctx);
      const at = ctx.str("to-time");
      const to = ctx.str("to");
      if ((at === undefined) === (to === undefined))
        throw new UsageError("give exactly one of --to-time or --to");
      let target: number | "earliest" | "latest";
      if (to !== undefined) {
        if (to !== "earliest" && to !== "latest")
          throw new UsageError("--to must be earliest or latest");
        target = to;
      } else target = ctx.parse(() => parseTime(at!, Date.now()));
      const offsets = await ctx.admin.resetOffsets(group, topic, target);
      ctx.print(
        () =>
          `reset ${group} on ${topic} to ${typeof target === "number" ? isoTime(target) : target}\n` +
          table(offsets, [
            { header: "QUEUE", get: (o) => o.queue },
            { header: "OFFSET", get: (o) => o.offset },
          ]),
        { group, topic, offsets },
      );
    },
  },
  {
    name: "offset set",
    usage: "<group> <topic> --queue N --offset N",
    summary: "commit one queue's offset for a group (the next offset to read)",
    options: {
      group: { type: "string", short: "g" },
      topic: { type: "string" },
      queue: { type: "string" },
      offset: { type: "string" },
    },
    async run(ctx) {
      const { group, topic } = groupAndTopic(ctx);
      const queue = ctx.int("queue", 0, 100_000);
      const offset = ctx.int("offset", 0, Number.MAX_SAFE_INTEGER);
      if (queue === undefined || offset === undefined)
        throw new UsageError("--queue and --offset are required");
      await ctx.admin.commitOffset(group, topic, queue, offset);
      ctx.print(() => `committed ${group} on ${topic} queue ${queue} at ${offset}`, {
        group,
        topic,
        queue,
        offset,
      });
    },
  },
];
