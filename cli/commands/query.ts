/** `edgemq query` (by id, key or store time) and `edgemq dlq list|resend`. */
import type { Message, QueriedMessage } from "../../client/index.ts";
import { type Command, type Context, UsageError } from "../context.ts";
import { isoTime, keyValues, parseTime, preview, table } from "../format.ts";

function messageTable(messages: Message[], withTopic = false): string {
  return table(messages, [
    ...(withTopic ? [{ header: "TOPIC", get: (m: Message) => m.topic }] : []),
    { header: "QUEUE", get: (m) => m.queue },
    { header: "OFFSET", get: (m) => m.offset },
    { header: "MSG_ID", get: (m) => m.msgId },
    { header: "TAG", get: (m) => m.tag },
    { header: "KEYS", get: (m) => m.keys?.join(",") },
    { header: "STORED", get: (m) => isoTime(m.storedAt) },
    { header: "RECONSUMED", get: (m) => m.reconsumeTimes },
    { header: "BODY", get: (m) => preview(m.body, m.encoding) },
  ]);
}

function messageDetail(m: QueriedMessage): string {
  const groups = Object.entries(m.groups ?? {});
  return [
    keyValues([
      ["msgId", m.msgId],
      ["topic", m.topic],
      ["queue", m.queue],
      ["offset", m.offset],
      ["tag", m.tag],
      ["keys", m.keys?.join(", ")],
      ["properties", m.properties ? JSON.stringify(m.properties) : undefined],
      ["shardingKey", m.shardingKey],
      ["priority", m.priority],
      ["born", isoTime(m.bornAt)],
      ["stored", isoTime(m.storedAt)],
      ["expires", m.expireAt === undefined ? undefined : isoTime(m.expireAt)],
      ["encoding", m.encoding],
      ["body", m.body],
    ]),
    "",
    table(groups, [
      { header: "GROUP", get: ([g]) => g },
      { header: "STATE", get: ([, s]) => s },
    ]),
  ].join("\n");
}

export const queryCommand: Command = {
  name: "query",
  usage: "<topic> (--id MSGID | --key KEY | --from TIME [--to TIME]) [--limit N]",
  summary: "find messages by id (with each group's state), by key, or by store time",
  options: {
    id: { type: "string" },
    key: { type: "string", short: "k" },
    from: { type: "string" },
    to: { type: "string" },
    limit: { type: "string" },
  },
  help: [
    "    --id MSGID     one message, with its state in each consumer group",
    "-k, --key KEY     messages carrying KEY",
    "    --from TIME    stored in [from, to); TIME: Unix ms, ISO 8601, now, -15m (--to defaults to now)",
    "    --limit N      at most N messages (default 100, at most 1000)",
  ],
  async run(ctx) {
    const topic = ctx.arg(0, "topic");
    ctx.atMost(1);
    const id = ctx.str("id");
    const key = ctx.str("key");
    const from = ctx.str("from");
    const ways = [id, key, from].filter((x) => x !== undefined).length;
    if (ways !== 1) throw new UsageError("give exactly one of --id, --key or --from");
    if (ctx.str("to") !== undefined && from === undefined)
      throw new UsageError("--to goes with --from");
    const limit = ctx.int("limit", 1, 1000);
    if (id !== undefined) {
      const m = await ctx.admin.queryMessage(topic, id);
      ctx.print(() => messageDetail(m), m);
      return;
    }
    let messages: Message[];
    if (key !== undefined) {
      const q = new URLSearchParams({ key, ...(limit !== undefined && { limit: String(limit) }) });
      messages = (
        (await ctx.request("GET", `/v1/topics/${encodeURIComponent(topic)}/messages?${q}`)) as {
          messages: Message[];
        }
      ).messages;
    } else {
      const now = Date.now();
      const start = ctx.parse(() => parseTime(from!, now));
      const toText = ctx.str("to");
      const end = toText === undefined ? now + 1 : ctx.parse(() => parseTime(toText, now));
      messages = await ctx.admin.queryByTime(topic, start, end, limit);
    }
    ctx.print(() => messageTable(messages), { messages });
  },
};

export const dlqCommands: Command[] = [
  {
    name: "dlq list",
    usage: "<group> [--limit N]",
    summary: "list a group's dead letters",
    options: { limit: { type: "string" } },
    async run(ctx: Context) {
      const group = ctx.arg(0, "group");
      ctx.atMost(1);
      const limit = ctx.int("limit", 1, 1000);
      const q = limit === undefined ? "" : `?limit=${limit}`;
      const { messages } = (await ctx.request(
        "GET",
        `/v1/groups/${encodeURIComponent(group)}/dlq/messages${q}`,
      )) as {
        messages: Message[];
      };
      ctx.print(() => messageTable(messages, true), { messages });
    },
  },
  {
    name: "dlq resend",
    usage: "<group> (--all | <msgId>...)",
    summary: "take dead letters back to the group (same msgId, reconsumeTimes 0)",
    options: { all: { type: "boolean" } },
    async run(ctx) {
      const group = ctx.arg(0, "group");
      const ids = ctx.args.positionals.slice(1);
      if (ctx.flag("all") === ids.length > 0)
        throw new UsageError("give msgIds, or --all (not both)");
      const answer = (await ctx.admin.resendDlq(group, ids.length ? ids : undefined)) as {
        resent: string[];
      };
      ctx.print(
        () =>
          `resent ${answer.resent.length} message(s) to ${group}${answer.resent.length ? `:\n${answer.resent.join("\n")}` : ""}`,
        answer,
      );
      if (ids.length && answer.resent.length < ids.length) {
        const missing = ids.filter((id) => !answer.resent.includes(id));
        ctx.note(`edgemq: not in the DLQ of ${group}: ${missing.join(", ")}`);
        process.exitCode = 1;
      }
    },
  },
];
