/** `edgemq token mint`, `edgemq tx list|commit|rollback`, `edgemq producer-group set|list`. */
import type { ProducerGroupConfig, ProducerGroupInput } from "../../client/index.ts";
import { type Command, UsageError } from "../context.ts";
import { formatDuration, isoTime, keyValues, parseDuration, splitList, table } from "../format.ts";

interface OpenTransaction {
  txId: string;
  msgId: string;
  producerGroup: string;
  queue: number;
  createdAt: number;
  ageMs: number;
  checks: number;
  nextCheckAt: number | null;
}

export const tokenCommand: Command = {
  name: "token mint",
  usage: "--sub NAME [--publish P] [--subscribe P] [--groups P] [--producer-groups P] [--ttl DUR]",
  summary: "mint a scoped token (needs TOKEN_SECRET on the broker)",
  options: {
    sub: { type: "string" },
    publish: { type: "string", multiple: true },
    subscribe: { type: "string", multiple: true },
    groups: { type: "string", multiple: true },
    "producer-groups": { type: "string", multiple: true },
    ttl: { type: "string" },
  },
  help: [
    "    --sub NAME        who the token is for",
    "    --publish P       topics it may send to; P may end with * (repeat or comma-separate)",
    "    --subscribe P     topics it may pull and receive from",
    "    --groups P        groups it may consume as",
    "    --producer-groups P  producer groups it may run transactions for",
    "    --ttl DUR         lifetime, e.g. 1h, 30d (default 1h)",
    'Prints the token alone (for $(edgemq token mint ...)); --json prints {"token"}.',
  ],
  async run(ctx) {
    ctx.atMost(0);
    const sub = ctx.str("sub");
    if (!sub) throw new UsageError("--sub is required");
    const ttl = ctx.str("ttl") ?? "1h";
    const ttlSeconds = Math.max(1, Math.round(ctx.parse(() => parseDuration(ttl)) / 1000));
    const token = await ctx.admin.createToken({
      sub,
      publish: splitList(ctx.list("publish")),
      subscribe: splitList(ctx.list("subscribe")),
      groups: splitList(ctx.list("groups")),
      producerGroups: splitList(ctx.list("producer-groups")),
      ttlSeconds,
    });
    ctx.print(() => token, { token });
  },
};

export const txCommands: Command[] = [
  {
    name: "tx list",
    usage: "<topic> [--limit N]",
    summary: "list a topic's open transactions (half messages)",
    options: { limit: { type: "string" } },
    async run(ctx) {
      const topic = ctx.arg(0, "topic");
      ctx.atMost(1);
      const limit = ctx.int("limit", 1, 1000);
      const { transactions } = (await ctx.request(
        "GET",
        `/v1/topics/${encodeURIComponent(topic)}/transactions${limit === undefined ? "" : `?limit=${limit}`}`,
      )) as { transactions: OpenTransaction[] };
      ctx.print(
        () =>
          table(transactions, [
            { header: "TX_ID", get: (t) => t.txId },
            { header: "MSG_ID", get: (t) => t.msgId },
            { header: "PRODUCER_GROUP", get: (t) => t.producerGroup },
            { header: "QUEUE", get: (t) => t.queue },
            { header: "AGE", get: (t) => formatDuration(t.ageMs), align: "right" },
            { header: "CHECKS", get: (t) => t.checks },
            { header: "NEXT_CHECK", get: (t) => isoTime(t.nextCheckAt) },
          ]),
        { transactions },
      );
    },
  },
  ...(["commit", "rollback"] as const).map((end): Command => ({
    name: `tx ${end}`,
    usage: "<txId>",
    summary:
      end === "commit"
        ? "commit an open transaction (the message becomes visible)"
        : "roll back an open transaction",
    async run(ctx) {
      const txId = ctx.arg(0, "txId");
      ctx.atMost(1);
      const answer = (await ctx.request(
        "POST",
        `/v1/transactions/${encodeURIComponent(txId)}/${end}`,
      )) as {
        status: string;
      };
      ctx.print(() => answer.status, answer);
    },
  })),
];

export const producerGroupCommands: Command[] = [
  {
    name: "producer-group set",
    usage:
      "<producerGroup> [--check-url URL] [--check-after DUR] [--check-interval DUR] [--max-checks N] [--rotate-secret]",
    summary: "configure transaction check-backs for a producer group",
    options: {
      "check-url": { type: "string" },
      "check-after": { type: "string" },
      "check-interval": { type: "string" },
      "max-checks": { type: "string" },
      "rotate-secret": { type: "boolean" },
    },
    help: [
      '    --check-url URL       where the broker asks about open transactions ("none" to clear)',
      "    --check-after DUR     first check after (default 6s)",
      "    --check-interval DUR  then every (default 60s)",
      "    --max-checks N        then roll back (default 15)",
      "    --rotate-secret       make a new signing secret (the old one signs 24 h more)",
      "The signing secret of check-backs is printed when it is made (a new group, or",
      "--rotate-secret), and never again: give it to the check handler.",
    ],
    async run(ctx) {
      const name = ctx.arg(0, "producer group");
      ctx.atMost(1);
      const input: ProducerGroupInput = {};
      const url = ctx.str("check-url");
      if (url !== undefined) input.checkUrl = url === "none" ? null : url;
      const after = ctx.str("check-after");
      if (after !== undefined) input.checkAfterMs = ctx.parse(() => parseDuration(after));
      const interval = ctx.str("check-interval");
      if (interval !== undefined) input.checkIntervalMs = ctx.parse(() => parseDuration(interval));
      const maxChecks = ctx.int("max-checks", 1, 1000);
      if (maxChecks !== undefined) input.maxChecks = maxChecks;
      if (ctx.flag("rotate-secret")) input.rotateSecret = true;
      const pg = await ctx.admin.putProducerGroup(name, input);
      ctx.print(
        () =>
          keyValues([
            ["producer group", pg.producerGroup],
            ["check url", pg.checkUrl ?? "none"],
            ["check after", formatDuration(pg.checkAfterMs)],
            ["check every", formatDuration(pg.checkIntervalMs)],
            ["max checks", pg.maxChecks],
            ...(pg.signingSecret === undefined
              ? []
              : ([["signing secret", `${pg.signingSecret}  (shown once)`]] as [string, string][])),
          ]),
        pg,
      );
    },
  },
  {
    name: "producer-group list",
    usage: "",
    summary: "list producer groups",
    async run(ctx) {
      ctx.atMost(0);
      const { producerGroups } = (await ctx.request("GET", "/v1/producer-groups")) as {
        producerGroups: ProducerGroupConfig[];
      };
      ctx.print(
        () =>
          table(producerGroups, [
            { header: "PRODUCER_GROUP", get: (p) => p.producerGroup },
            { header: "CHECK_URL", get: (p) => p.checkUrl },
            { header: "AFTER", get: (p) => formatDuration(p.checkAfterMs), align: "right" },
            { header: "EVERY", get: (p) => formatDuration(p.checkIntervalMs), align: "right" },
            { header: "MAX_CHECKS", get: (p) => p.maxChecks },
          ]),
        { producerGroups },
      );
    },
  },
];
