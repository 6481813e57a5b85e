/**
 * `edgemq tail`: follows a topic across all its queues with long-poll pulls,
 * like kafka-console-consumer. Without `--group` it reads as an anonymous
 * observer (offsets kept in memory, no group created on the broker). With
 * `--group` it starts at that group's committed offsets and commits what it
 * printed, reading every queue without joining the group's membership: the
 * contract has no "leave", so a joined CLI would hold its share of the queues
 * for 30 s after it exits.
 */
import {
  EdgemqError,
  type Message,
  type OffsetStore,
  PullConsumer,
  type QueueOffsets,
} from "../../client/index.ts";
import { type Command, type Context, UsageError } from "../context.ts";
import { cell, isoTime, parseDuration } from "../format.ts";

/** The name the observer keeps its in-memory offsets under (never sent to the broker). */
const OBSERVER = "edgemq-cli-tail";

/** Offsets kept by the broker for a group: loaded from its committed offsets, saved by committing. */
class GroupOffsets implements OffsetStore {
  readonly #ctx: Context;

  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  async load(group: string, topic: string): Promise<QueueOffsets> {
    const lag = await this.#ctx.admin.lag(group, topic);
    return Object.fromEntries(lag.map((q) => [q.queue, q.offset]));
  }

  async save(group: string, topic: string, offsets: QueueOffsets): Promise<void> {
    await Promise.all(
      Object.entries(offsets).map(([q, offset]) =>
        this.#ctx.admin.commitOffset(group, topic, Number(q), offset),
      ),
    );
  }
}

function line(ctx: Context, m: Message, meta: boolean): string {
  if (ctx.json) return JSON.stringify(m);
  if (!meta) return cell(m.body);
  const parts = [`${m.queue}:${m.offset}`, isoTime(m.storedAt), m.msgId];
  if (m.tag !== undefined) parts.push(`tag=${m.tag}`);
  if (m.keys?.length) parts.push(`keys=${m.keys.join(",")}`);
  parts.push(cell(m.body));
  return parts.join("  ");
}

export const tailCommand: Command = {
  name: "tail",
  usage: "<topic> [options]",
  summary: "follow a topic across its queues (long-poll), printing each message",
  options: {
    "from-beginning": { type: "boolean" },
    group: { type: "string", short: "g" },
    filter: { type: "string", short: "f" },
    max: { type: "string", short: "n" },
    timeout: { type: "string" },
    meta: { type: "boolean", short: "v" },
  },
  help: [
    "    --from-beginning   start at the oldest stored message (default: only new ones)",
    "-g, --group G          read as group G: start at its committed offsets and commit what is printed",
    "                       (every queue; the CLI does not join the group's membership)",
    "-f, --filter EXPR      * | TagA || TagB | sql:<condition>",
    "-n, --max N            exit after N messages",
    "    --timeout DUR      exit when nothing arrives for DUR (e.g. 10s)",
    "-v, --meta             print queue:offset, store time, msgId, tag and keys before the body",
    "Prints bodies one per line (--json: one message object per line). Ctrl-C stops.",
  ],
  async run(ctx) {
    const topic = ctx.arg(0, "topic");
    ctx.atMost(1);
    const group = ctx.str("group");
    const fromBeginning = ctx.flag("from-beginning");
    if (group !== undefined && fromBeginning) {
      throw new UsageError(
        "--from-beginning is for observing; to rewind a group use: edgemq offset reset <group> <topic> --to earliest",
      );
    }
    const max = ctx.int("max", 1, Number.MAX_SAFE_INTEGER);
    const timeoutText = ctx.str("timeout");
    const idleMs =
      timeoutText === undefined ? undefined : ctx.parse(() => parseDuration(timeoutText));
    const filter = ctx.str("filter");
    const meta = ctx.flag("meta");

    const consumer = new PullConsumer({
      ...ctx.connection,
      topic,
      // Broadcasting: every queue, offsets in the store (memory, or the group's on the broker).
      group: group ?? OBSERVER,
      mode: "broadcasting",
      ...(group !== undefined && { offsetStore: new GroupOffsets(ctx) }),
      consumeFrom: fromBeginning ? "earliest" : "latest",
      ...(filter !== undefined && { filter }),
      waitMs: 20_000,
      max: 100,
    });
    const stop = new AbortController();
    let stopping = false;
    const onSignal = () => {
      if (stopping) process.exit(130);
      stopping = true;
      stop.abort(new DOMException("interrupted", "AbortError"));
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);

    let printed = 0;
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    const armIdle = () => {
      if (idleMs === undefined) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => stop.abort(new DOMException("idle", "TimeoutError")), idleMs);
    };
    try {
      await consumer.start();
      // Fix the starting point now (not at the first poll), so "from now" means from this line on.
      if (group === undefined) {
        if (fromBeginning) await consumer.seekToBeginning();
        else await consumer.seekToEnd();
      }
      const queues = consumer.assignment();
      ctx.note(
        `edgemq: following ${topic} (${queues.length} queues${group === undefined ? "" : ` as group ${group}`}` +
          `, from ${group !== undefined ? "its committed offsets" : fromBeginning ? "the beginning" : "now"}); Ctrl-C to stop`,
      );
      armIdle();
      while (!stop.signal.aborted && (max === undefined || printed < max)) {
        let batch: Message[];
        try {
          batch = await consumer.poll(stop.signal);
        } catch (e) {
          if (stop.signal.aborted) break;
          throw e;
        }
        if (batch.length) armIdle();
        const room = max === undefined ? batch.length : Math.min(batch.length, max - printed);
        const out = batch.slice(0, room);
        if (out.length) {
          process.stdout.write(out.map((m) => line(ctx, m, meta)).join("\n") + "\n");
          printed += out.length;
        }
        if (group !== undefined && room < batch.length) {
          // Hand back what was not printed: each queue resumes at its first unprinted message.
          const firstUnprinted = new Map<number, number>();
          for (const m of batch.slice(room)) {
            if (!firstUnprinted.has(m.queue)) firstUnprinted.set(m.queue, m.offset);
          }
          for (const [q, offset] of firstUnprinted) consumer.seek(q, offset);
        }
      }
    } finally {
      clearTimeout(idleTimer);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      await consumer.shutdown().catch((e: unknown) => {
        if (!(e instanceof EdgemqError)) throw e;
        ctx.note(`edgemq: could not commit offsets on exit: ${e.code}: ${e.message}`);
      });
    }
    ctx.note(`edgemq: processed a total of ${printed} messages`);
  },
};
