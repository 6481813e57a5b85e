/** `edgemq send`: one message from the arguments, or one per line of stdin. */
import { createInterface } from "node:readline";
import type { ProducerMessage, ProducerSendResult } from "../../client/index.ts";
import { type Command, type Context, UsageError } from "../context.ts";
import { parseDuration, parseProperties, parseTime, splitList, table } from "../format.ts";

/** Lines per request when reading stdin, and the bytes that close a batch early (API: 1000 messages, 4 MiB). */
const BATCH_MESSAGES = 500;
const BATCH_BYTES = 1024 * 1024;

/** The message fields the options give, shared by every message of the run. */
function template(ctx: Context, topic: string): Omit<ProducerMessage, "body"> {
  const m: Omit<ProducerMessage, "body"> = { topic };
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
  const at = ctx.str("deliver-at");
  if (at !== undefined) m.deliverAt = ctx.parse(() => parseTime(at, Date.now()));
  const expire = ctx.str("expire-at");
  if (expire !== undefined) m.expireAt = ctx.parse(() => parseTime(expire, Date.now()));
  const priority = ctx.int("priority", 0, 9);
  if (priority !== undefined) m.priority = priority;
  const queue = ctx.int("queue", 0, 100_000);
  if (queue !== undefined) m.queue = queue;
  if (ctx.flag("base64")) m.encoding = "base64";
  return m;
}

async function* stdinBatches(): AsyncGenerator<string[]> {
  let batch: string[] = [];
  let size = 0;
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (line === "") continue;
    batch.push(line);
    size += line.length;
    if (batch.length >= BATCH_MESSAGES || size >= BATCH_BYTES) {
      yield batch;
      batch = [];
      size = 0;
    }
  }
  if (batch.length) yield batch;
}

export const sendCommand: Command = {
  name: "send",
  usage: "<topic> [body] [options]",
  summary: "send a message (body from the argument, or one message per line of stdin)",
  options: {
    tag: { type: "string" },
    key: { type: "string", short: "k", multiple: true },
    property: { type: "string", short: "p", multiple: true },
    "sharding-key": { type: "string", short: "s" },
    "msg-id": { type: "string" },
    delay: { type: "string" },
    "delay-level": { type: "string" },
    "deliver-at": { type: "string" },
    "expire-at": { type: "string" },
    priority: { type: "string" },
    queue: { type: "string" },
    base64: { type: "boolean" },
  },
  help: [
    "    --tag TAG                 the message's tag",
    "-k, --key KEY                a key to query it by (repeat, or comma-separate)",
    "-p, --property K=V           a property for SQL92 filters (repeat)",
    "-s, --sharding-key KEY       same key, same queue, kept in order",
    "    --msg-id ID              your own id: a resend with it is stored once (one message only)",
    "    --delay DUR              deliver after DUR (10s, 5m); or --delay-level 1..18; or --deliver-at TIME",
    "    --expire-at TIME         never deliver after TIME",
    "    --priority 0..9          for the drop-lowest-priority overflow policy (default 4)",
    "    --queue N                pin the queue",
    "    --base64                 the body is base64 (binary)",
    "Without a body argument, each line of stdin is one message (sent in batches).",
  ],
  async run(ctx) {
    const topic = ctx.arg(0, "topic");
    const base = template(ctx, topic);
    const msgId = ctx.str("msg-id");
    const producer = ctx.producer();
    const results: ProducerSendResult[] = [];
    try {
      if (ctx.args.positionals.length > 1) {
        const body = ctx.args.positionals.slice(1).join(" ");
        results.push(await producer.send({ ...base, body, ...(msgId !== undefined && { msgId }) }));
      } else {
        if (process.stdin.isTTY) {
          throw new UsageError("give a body, or pipe messages in (one per line)");
        }
        if (msgId !== undefined)
          throw new UsageError("--msg-id needs a single message given as an argument");
        for await (const lines of stdinBatches()) {
          results.push(...(await producer.sendBatch(lines.map((body) => ({ ...base, body })))));
        }
      }
    } finally {
      await producer.close();
    }
    ctx.print(
      () =>
        table(results, [
          { header: "MSG_ID", get: (r) => r.msgId },
          { header: "QUEUE", get: (r) => ("queue" in r ? r.queue : null), align: "right" },
          { header: "OFFSET", get: (r) => ("offset" in r ? r.offset : null), align: "right" },
          { header: "STATUS", get: (r) => r.status },
        ]),
      { results },
    );
  },
};
