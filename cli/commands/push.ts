/** `edgemq push put|list|get|delete|pause|resume|rotate-secret`: push subscriptions to HTTP endpoints. */
import type { PushInfo, PushInput, PushPutResult } from "../../client/index.ts";
import { type Command, UsageError } from "../context.ts";
import { formatDuration, isoTime, keyValues, parseDuration, splitList, table } from "../format.ts";

function config(p: PushPutResult | PushInfo): [string, string | number | null][] {
  return [
    ["name", p.name],
    ["topic", p.topic],
    ["url", p.url],
    ["filter", p.filter],
    ["state", p.paused ? "paused" : "active"],
    ["max concurrency", p.maxConcurrency],
    ["timeout", formatDuration(p.timeoutMs)],
    ["max reconsume times", p.maxReconsumeTimes],
    ["retry delays", p.retryDelaysMs.map((d) => formatDuration(d)).join(" ")],
    ["orderly", p.orderly ? "yes" : "no"],
    ["created", isoTime(p.createdAt)],
    ["updated", isoTime(p.updatedAt)],
  ];
}

function withStats(p: PushInfo): [string, string | number | null][] {
  const s = p.stats;
  return [
    ...config(p),
    ["delivered", s.delivered],
    ["failed", s.failed],
    ["in flight", s.inflight],
    ["lag", s.lag],
    ["dlq", s.dlq],
    ["last error", s.lastError ? `${s.lastError} (${isoTime(s.lastErrorAt)})` : null],
  ];
}

/** Prints a PUT's answer; a signing secret is shown once, so it is said loudly. */
function printPut(p: PushPutResult): string {
  const text = keyValues(config(p));
  if (!p.signingSecret) return text;
  return `${text}\nsigning secret: ${p.signingSecret}\n(shown only now: give it to the endpoint's createPushHandler)`;
}

function change(verb: "pause" | "resume", summary: string): Command {
  return {
    name: `push ${verb}`,
    usage: "<name>",
    summary,
    async run(ctx) {
      const name = ctx.arg(0, "push subscription name");
      ctx.atMost(1);
      const p =
        verb === "pause" ? await ctx.admin.pausePush(name) : await ctx.admin.resumePush(name);
      ctx.print(() => printPut(p), p);
    },
  };
}

export const pushCommands: Command[] = [
  {
    name: "push put",
    usage: "<name> --topic T --url URL [options]",
    summary: "create or update a push subscription: the broker POSTs each message to a URL",
    options: {
      topic: { type: "string" },
      url: { type: "string" },
      filter: { type: "string" },
      concurrency: { type: "string" },
      timeout: { type: "string" },
      "max-retries": { type: "string" },
      "retry-delays": { type: "string" },
      orderly: { type: "boolean" },
      paused: { type: "boolean" },
      "rotate-secret": { type: "boolean" },
    },
    help: [
      "    --topic T                the topic delivered (required on create; cannot change)",
      "    --url URL                the endpoint: https://, or http:// to a loopback host or a local broker",
      "    --filter EXPR            *, tags (TagA || TagB) or sql:… (default *)",
      "    --concurrency N          deliveries in flight, 1..256 (default 8), split over the topic's queues",
      "    --timeout DUR            no answer within this is a failure, 100ms..2m (default 10s)",
      "    --max-retries N          failed deliveries retried this many times, then the DLQ (default 16)",
      "    --retry-delays LIST      delays before each retry, e.g. 1s,5s,30s (the last repeats)",
      "    --orderly                one message per sharding key at a time, in offset order",
      "    --paused                 create or leave it paused",
      "    --rotate-secret          make a new signing secret (the old one signs 24 h more)",
      "The name is also the subscription's consumer group (`edgemq group describe`, `edgemq dlq`).",
      "On create the answer shows the signing secret, once.",
    ],
    async run(ctx) {
      const name = ctx.arg(0, "push subscription name");
      ctx.atMost(1);
      const input: PushInput = {};
      const topic = ctx.str("topic");
      if (topic !== undefined) input.topic = topic;
      const url = ctx.str("url");
      if (url !== undefined) input.url = url;
      const filter = ctx.str("filter");
      if (filter !== undefined) input.filter = filter;
      const concurrency = ctx.int("concurrency", 1, 256);
      if (concurrency !== undefined) input.maxConcurrency = concurrency;
      const timeout = ctx.str("timeout");
      if (timeout !== undefined) input.timeoutMs = ctx.parse(() => parseDuration(timeout));
      const retries = ctx.int("max-retries", 0, 1000);
      if (retries !== undefined) input.maxReconsumeTimes = retries;
      const delays = ctx.str("retry-delays");
      if (delays !== undefined)
        input.retryDelaysMs = ctx.parse(() => splitList(delays).map((d) => parseDuration(d)));
      if (ctx.flag("orderly")) input.orderly = true;
      if (ctx.flag("paused")) input.paused = true;
      if (ctx.flag("rotate-secret")) input.rotateSecret = true;
      if (Object.keys(input).length === 0)
        throw new UsageError("nothing to set: give --topic and --url (or options to change)");
      const p = await ctx.admin.putPush(name, input);
      ctx.print(() => printPut(p), p);
    },
  },
  {
    name: "push list",
    usage: "",
    summary: "list push subscriptions",
    async run(ctx) {
      ctx.atMost(0);
      const push = await ctx.admin.listPush();
      ctx.print(
        () =>
          table(push, [
            { header: "NAME", get: (p) => p.name },
            { header: "TOPIC", get: (p) => p.topic },
            { header: "URL", get: (p) => p.url },
            { header: "STATE", get: (p) => (p.paused ? "paused" : "active") },
            { header: "CONCURRENCY", get: (p) => p.maxConcurrency, align: "right" },
            { header: "ORDERLY", get: (p) => (p.orderly ? "yes" : "no") },
          ]),
        { push },
      );
    },
  },
  {
    name: "push get",
    usage: "<name>",
    summary: "show a push subscription: config, delivered, failed, in flight, lag, DLQ, last error",
    async run(ctx) {
      const name = ctx.arg(0, "push subscription name");
      ctx.atMost(1);
      const p = await ctx.admin.getPush(name);
      ctx.print(() => keyValues(withStats(p)), p);
    },
  },
  {
    name: "push delete",
    usage: "<name>",
    summary: "delete a push subscription (deliveries stop; its group and offsets stay)",
    async run(ctx) {
      const name = ctx.arg(0, "push subscription name");
      ctx.atMost(1);
      await ctx.admin.deletePush(name);
      ctx.print(() => `deleted push subscription ${name}`, { push: name, deleted: true });
    },
  },
  change("pause", "pause a push subscription's deliveries"),
  change("resume", "resume a paused push subscription from where it stopped"),
  {
    name: "push rotate-secret",
    usage: "<name>",
    summary: "make a new signing secret (the old one keeps signing for 24 h)",
    async run(ctx) {
      const name = ctx.arg(0, "push subscription name");
      ctx.atMost(1);
      const secret = await ctx.admin.rotatePushSecret(name);
      ctx.print(() => `signing secret: ${secret}\n(the previous one signs for 24 h more)`, {
        push: name,
        signingSecret: secret,
      });
    },
  },
];
