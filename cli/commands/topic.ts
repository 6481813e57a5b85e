/** `edgemq topic create|update|list|describe|delete|purge`. */
import type { QueueStats, TopicConfig, TopicConfigInput } from "../../client/index.ts";
import { type Command, type Context, UsageError } from "../context.ts";
import { bytes, formatDuration, isoTime, keyValues, parseDuration, table } from "../format.ts";

const POLICIES = [
  "reject",
  "drop-oldest",
  "drop-newest",
  "drop-lowest-priority",
  "drop-earliest-deadline",
];

const configOptions = {
  queues: { type: "string", short: "q" },
  retention: { type: "string" },
  "max-message-bytes": { type: "string" },
  "max-backlog-messages": { type: "string" },
  "max-backlog-bytes": { type: "string" },
  "overflow-policy": { type: "string" },
} as const;

const configHelp = [
  "-q, --queues N               queues (may grow, never shrink; default 4)",
  "    --retention DUR          how long messages are kept, e.g. 72h, 3d (default 72h)",
  "    --max-message-bytes N    largest message (default 1048576)",
  '    --max-backlog-messages N per-queue bound ("none" to remove)',
  '    --max-backlog-bytes N    per-queue bound in bytes ("none" to remove)',
  `    --overflow-policy P      when a bound is reached: ${POLICIES.join(" | ")}`,
];

function bound(ctx: Context, name: string): number | null | undefined {
  const v = ctx.str(name);
  if (v === undefined) return undefined;
  if (v === "none") return null;
  return ctx.int(name, 1, Number.MAX_SAFE_INTEGER);
}

function configInput(ctx: Context): TopicConfigInput {
  const input: TopicConfigInput = {};
  const queues = ctx.int("queues", 1, 100_000);
  if (queues !== undefined) input.queues = queues;
  const retention = ctx.str("retention");
  if (retention !== undefined) input.retentionMs = ctx.parse(() => parseDuration(retention));
  const maxBytes = ctx.int("max-message-bytes", 1, Number.MAX_SAFE_INTEGER);
  if (maxBytes !== undefined) input.maxMessageBytes = maxBytes;
  const backlog = bound(ctx, "max-backlog-messages");
  if (backlog !== undefined) input.maxBacklogMessages = backlog;
  const backlogBytes = bound(ctx, "max-backlog-bytes");
  if (backlogBytes !== undefined) input.maxBacklogBytes = backlogBytes;
  const policy = ctx.str("overflow-policy");
  if (policy !== undefined) {
    if (!POLICIES.includes(policy))
      throw new UsageError(`--overflow-policy must be one of ${POLICIES.join(", ")}`);
    input.overflowPolicy = policy as TopicConfigInput["overflowPolicy"];
  }
  return input;
}

function configLines(t: TopicConfig): [string, string | number][] {
  const bounds = [
    t.maxBacklogMessages !== null ? `${t.maxBacklogMessages} messages` : null,
    t.maxBacklogBytes !== null ? bytes(t.maxBacklogBytes) : null,
  ].filter(Boolean);
  return [
    ["topic", t.topic],
    ["queues", t.queues],
    ["retention", formatDuration(t.retentionMs)],
    ["max message", bytes(t.maxMessageBytes)],
    [
      "backlog bound",
      bounds.length ? `${bounds.join(", ")} per queue (${t.overflowPolicy})` : "none",
    ],
    ["created", isoTime(t.createdAt)],
    ["updated", isoTime(t.updatedAt)],
  ];
}

const sum = (qs: QueueStats[], key: keyof QueueStats) =>
  qs.reduce((n, q) => n + (q[key] as number), 0);

function put(verb: "create" | "update"): Command {
  return {
    name: `topic ${verb}`,
    usage: "<topic> [options]",
    summary:
      verb === "create" ? "create a topic (or update it: same call)" : "change a topic's config",
    options: configOptions,
    help: configHelp,
    async run(ctx) {
      const name = ctx.arg(0, "topic name");
      ctx.atMost(1);
      const config = await ctx.admin.createTopic(name, configInput(ctx));
      ctx.print(() => keyValues(configLines(config)), config);
    },
  };
}

export const topicCommands: Command[] = [
  put("create"),
  put("update"),
  {
    name: "topic list",
    usage: "",
    summary: "list topics with their backlog",
    async run(ctx) {
      ctx.atMost(0);
      const topics = await ctx.admin.listTopics();
      const details = await Promise.all(
        topics.map((t) => ctx.admin.getTopic(t.topic).catch(() => null)),
      );
      const rows = topics.map((t, i) => ({ ...t, queueStats: details[i]?.queueStats ?? [] }));
      ctx.print(
        () =>
          table(rows, [
            { header: "TOPIC", get: (t) => t.topic },
            { header: "QUEUES", get: (t) => t.queues },
            { header: "MESSAGES", get: (t) => sum(t.queueStats, "messages") },
            { header: "SIZE", get: (t) => bytes(sum(t.queueStats, "bytes")), align: "right" },
            { header: "SCHEDULED", get: (t) => sum(t.queueStats, "scheduled") },
            { header: "RETENTION", get: (t) => formatDuration(t.retentionMs), align: "right" },
            { header: "POLICY", get: (t) => t.overflowPolicy },
          ]),
        { topics: rows },
      );
    },
  },
  {
    name: "topic describe",
    usage: "<topic>",
    summary: "show a topic's config, queues (min/max offset, size) and groups",
    async run(ctx) {
      const name = ctx.arg(0, "topic name");
      ctx.atMost(1);
      const t = (await ctx.admin.getTopic(name)) as Awaited<
        ReturnType<Context["admin"]["getTopic"]>
      > & {
        groups?: string[];
      };
      ctx.print(
        () =>
          [
            keyValues([...configLines(t), ["groups", (t.groups ?? []).join(", ") || "none"]]),
            "",
            table(t.queueStats, [
              { header: "QUEUE", get: (q) => q.queue },
              { header: "MIN_OFFSET", get: (q) => q.minOffset },
              { header: "MAX_OFFSET", get: (q) => q.maxOffset },
              { header: "MESSAGES", get: (q) => q.messages },
              { header: "SIZE", get: (q) => bytes(q.bytes), align: "right" },
              { header: "SCHEDULED", get: (q) => q.scheduled },
              { header: "DROPPED", get: (q) => q.dropped },
              { header: "EXPIRED", get: (q) => q.expired },
              { header: "SENT", get: (q) => q.sent },
              { header: "DELIVERED", get: (q) => q.delivered },
            ]),
          ].join("\n"),
        t,
      );
    },
  },
  {
    name: "topic delete",
    usage: "<topic>",
    summary: "delete a topic and all its messages",
    async run(ctx) {
      const name = ctx.arg(0, "topic name");
      ctx.atMost(1);
      await ctx.admin.deleteTopic(name);
      ctx.print(() => `deleted topic ${name}`, { topic: name, deleted: true });
    },
  },
  {
    name: "topic purge",
    usage: "<topic>",
    summary: "delete every stored message; config and group offsets stay",
    async run(ctx) {
      const name = ctx.arg(0, "topic name");
      ctx.atMost(1);
      await ctx.admin.purgeTopic(name);
      ctx.print(() => `purged topic ${name}`, { topic: name, purged: true });
    },
  },
];
