/**
 * Consume throughput over a stored backlog, two ways, each beside the bare
 * runtime's read ceiling measured in the same run (the ceiling worker reading
 * the same number of rows per request, with the same concurrency):
 *
 * - pull + offset commit: one consumer per queue pulls 100 messages by
 *   offset, then commits the next offset (two requests per 100 messages);
 *   and the same committing every 10th pull, as the SDK's PullConsumer does
 *   on its interval (its default is every 5 s);
 * - receive + ack: consumers of one group receive up to 100 messages (any
 *   queue; each becomes invisible) and ack their receipts.
 *
 *   node bench/consume.ts        # prints one JSON line
 *   CONSUME_ONLY=sdk node bench/consume.ts   # only the SDK's consumers
 *
 * - the SDK's consumers with their defaults, over sessions and over HTTP
 *   (`sessions: false`): a PushConsumer (concurrency 8) whose handler returns
 *   at once (each message acked), and 4 SimpleConsumers receiving 32 at a
 *   time and awaiting `ack` of each message in turn.
 *
 * The backlog (CONSUME_N messages of 256 B over 4 queues, default 40 000) is
 * stored first; a window ends when it is drained or after $BENCH_SECONDS.
 */
import { PushConsumer, SimpleConsumer } from "../client/index.ts";
import { cpuMeter } from "./lib/cpu.ts";
import { payload, round, sleep } from "./lib/load.ts";
import { emit, ratio, type Throughput, throughput } from "./lib/report.ts";
import { type BenchServer, CEILING_ENTRY, startBenchServer } from "./lib/servers.ts";

const QUEUES = 4;
const N = Number(process.env.CONSUME_N ?? 40_000);
const PER_QUEUE = Math.ceil(N / QUEUES);
const MAX = 100;
const SIZE = 256;
const FILL_BATCH = 1000;

const fillBody = JSON.stringify({
  messages: Array.from({ length: FILL_BATCH }, (_, i) => ({ body: payload(SIZE, i) })),
});

/** Stores PER_QUEUE messages in each queue (or bare shard), two requests in flight. */
async function fill(s: BenchServer, path: (q: number) => string): Promise<void> {
  const jobs: string[] = [];
  for (let q = 0; q < QUEUES; q++)
    for (let n = 0; n < PER_QUEUE; n += FILL_BATCH) jobs.push(path(q));
  await Promise.all(
    [0, 1].map(async () => {
      for (let p = jobs.shift(); p !== undefined; p = jobs.shift()) {
        const r = await s.client.request("POST", p, fillBody);
        if (r.status !== 200) throw new Error(`fill: ${r.status} ${r.body.slice(0, 200)}`);
      }
    }),
  );
}

/** One reader per queue from offset 0 until each reaches PER_QUEUE. */
async function perQueueReaders(
  s: BenchServer,
  readBatch: (q: number, offset: number) => Promise<{ count: number; next: number }>,
): Promise<Throughput> {
  const next = new Array<number>(QUEUES).fill(0);
  const drained = () => next.every((o) => o >= PER_QUEUE);
  return throughput({
    pid: s.server.pid,
    concurrency: QUEUES,
    warmupMs: 200,
    done: drained,
    op: async (q) => {
      if (next[q]! >= PER_QUEUE) {
        await sleep(5);
        return 0;
      }
      const r = await readBatch(q, next[q]!);
      next[q] = r.next;
      return r.count;
    },
  });
}

/**
 * Drains a topic's backlog of `total` messages with consumers `start` sets
 * going (it calls `got(n)` as messages are handled and answers a stop
 * function); msg/s and server CPU per message until drained (or 60 s).
 */
async function drain(
  s: BenchServer,
  total: number,
  start: (got: (n: number) => void) => Promise<() => Promise<void>>,
): Promise<Throughput> {
  let handled = 0;
  const meter = cpuMeter(s.server.pid);
  const t0 = performance.now();
  const stop = await start((n) => (handled += n));
  const deadline = t0 + 60_000;
  while (handled < total && performance.now() < deadline) await sleep(5);
  const ms = performance.now() - t0;
  const cpu = meter.stop();
  await stop();
  return {
    msgPerSec: round((handled * 1000) / ms),
    reqPerSec: Number.NaN,
    cpuUsPerMsg: round((cpu * 1000) / Math.max(1, handled)),
    messages: handled,
    errors: handled < total ? total - handled : 0,
  };
}

/** The SDK's consumers, over sessions and over HTTP, each draining its own stored backlog. */
async function sdkConsumers(s: BenchServer): Promise<Record<string, Throughput>> {
  const out: Record<string, Throughput> = {};
  const total = PER_QUEUE * QUEUES;
  for (const sessions of [true, false]) {
    const via = sessions ? "session" : "http";
    const pushTopic = `sdk-push-${via}`;
    await s.client.json("PUT", `/v1/topics/${pushTopic}`, { queues: QUEUES });
    await fill(s, (q) => `/v1/topics/${pushTopic}/messages?queue=${q}`);
    out[`push-${via}`] = await drain(s, total, async (got) => {
      const c = new PushConsumer({ endpoint: s.server.url, group: `push-${via}`, sessions });
      c.subscribe(pushTopic, () => got(1));
      return () => c.shutdown();
    });
    process.stderr.write(`consume sdk push ${via}: ${JSON.stringify(out[`push-${via}`])}\n`);
    const simpleTopic = `sdk-simple-${via}`;
    await s.client.json("PUT", `/v1/topics/${simpleTopic}`, { queues: QUEUES });
    await fill(s, (q) => `/v1/topics/${simpleTopic}/messages?queue=${q}`);
    out[`simple-${via}`] = await drain(s, total, async (got) => {
      let stopped = false;
      const consumers = Array.from(
        { length: QUEUES },
        () =>
          new SimpleConsumer({
            endpoint: s.server.url,
            group: `simple-${via}`,
            topic: simpleTopic,
            waitMs: 1000,
            sessions,
          }),
      );
      const loops = consumers.map(async (c) => {
        while (!stopped) {
          for (const m of await c.receive()) {
            await c.ack(m);
            got(1);
          }
        }
      });
      return async () => {
        stopped = true;
        await Promise.all(loops);
        for (const c of consumers) c.close();
      };
    });
    process.stderr.write(`consume sdk simple ${via}: ${JSON.stringify(out[`simple-${via}`])}\n`);
  }
  return out;
}

export async function runConsume(): Promise<Record<string, unknown>> {
  const [edgemq, ceiling] = await Promise.all([
    startBenchServer(),
    startBenchServer({ entry: CEILING_ENTRY }),
  ]);
  try {
    // CONSUME_ONLY=sdk: only the SDK's consumers (sessions beside HTTP).
    if (process.env.CONSUME_ONLY === "sdk") return { sdk: await sdkConsumers(edgemq) };
    // ---- the read ceiling
    await fill(ceiling, (q) => `/append?shard=read-${q}`);
    const readCeiling = await perQueueReaders(ceiling, async (q, offset) => {
      const r = await ceiling.client.json<{ messages: unknown[]; nextOffset: number }>(
        "GET",
        `/read?shard=read-${q}&offset=${offset}&max=${MAX}`,
      );
      return { count: r.messages.length, next: r.nextOffset };
    });
    process.stderr.write(
      `consume read ceiling: ${readCeiling.msgPerSec} msg/s (${readCeiling.cpuUsPerMsg} µs cpu/msg)\n`,
    );

    // ---- pull + offset commit
    await edgemq.client.json("PUT", "/v1/topics/pulled", { queues: QUEUES });
    await fill(edgemq, (q) => `/v1/topics/pulled/messages?queue=${q}`);
    const pull = await perQueueReaders(edgemq, async (q, offset) => {
      const r = await edgemq.client.json<{ messages: unknown[]; nextOffset: number }>(
        "GET",
        `/v1/topics/pulled/queues/${q}/messages?offset=${offset}&max=${MAX}&group=puller`,
      );
      await edgemq.client.json("PUT", `/v1/groups/puller/topics/pulled/queues/${q}/offset`, {
        offset: r.nextOffset,
      });
      return { count: r.messages.length, next: r.nextOffset };
    });
    process.stderr.write(
      `consume pull+commit: ${pull.msgPerSec} msg/s (${pull.cpuUsPerMsg} µs cpu/msg)\n`,
    );

    // ---- pull, committing every 10th batch
    await edgemq.client.json("PUT", "/v1/topics/pulled10", { queues: QUEUES });
    await fill(edgemq, (q) => `/v1/topics/pulled10/messages?queue=${q}`);
    const pulls = new Array<number>(QUEUES).fill(0);
    const pull10 = await perQueueReaders(edgemq, async (q, offset) => {
      const r = await edgemq.client.json<{ messages: unknown[]; nextOffset: number }>(
        "GET",
        `/v1/topics/pulled10/queues/${q}/messages?offset=${offset}&max=${MAX}&group=puller`,
      );
      if (++pulls[q]! % 10 === 0 || r.nextOffset >= PER_QUEUE) {
        await edgemq.client.json("PUT", `/v1/groups/puller/topics/pulled10/queues/${q}/offset`, {
          offset: r.nextOffset,
        });
      }
      return { count: r.messages.length, next: r.nextOffset };
    });
    process.stderr.write(
      `consume pull+commit/10: ${pull10.msgPerSec} msg/s (${pull10.cpuUsPerMsg} µs cpu/msg)\n`,
    );

    // ---- receive + ack
    await edgemq.client.json("PUT", "/v1/topics/received", { queues: QUEUES });
    await fill(edgemq, (q) => `/v1/topics/received/messages?queue=${q}`);
    let received = 0;
    let emptyAnswers = 0;
    const total = PER_QUEUE * QUEUES;
    const receiveAck = await throughput({
      pid: edgemq.server.pid,
      concurrency: QUEUES,
      warmupMs: 200,
      done: () => received >= total || emptyAnswers > 20,
      op: async () => {
        const r = await edgemq.client.json<{ messages: { receipt: string }[] }>(
          "POST",
          "/v1/groups/receiver/topics/received/receive",
          { max: MAX, invisibleMs: 300_000, waitMs: 0 },
        );
        if (r.messages.length === 0) {
          emptyAnswers++;
          await sleep(5);
          return 0;
        }
        const acked = await edgemq.client.json<{ results: { ok?: boolean }[] }>(
          "POST",
          "/v1/groups/receiver/topics/received/ack",
          { receipts: r.messages.map((m) => m.receipt) },
        );
        if (!acked.results.every((x) => x.ok)) throw new Error("an ack failed");
        received += r.messages.length;
        return r.messages.length;
      },
    });
    process.stderr.write(
      `consume receive+ack: ${receiveAck.msgPerSec} msg/s (${receiveAck.cpuUsPerMsg} µs cpu/msg)\n`,
    );

    const sdk = await sdkConsumers(edgemq);

    return {
      messages: total,
      perRequest: MAX,
      sdk,
      consumers: QUEUES,
      readCeiling,
      pullCommit: { ...pull, ratio: ratio(pull.msgPerSec, readCeiling.msgPerSec) },
      pullCommitEvery10: { ...pull10, ratio: ratio(pull10.msgPerSec, readCeiling.msgPerSec) },
      receiveAck: { ...receiveAck, ratio: ratio(receiveAck.msgPerSec, readCeiling.msgPerSec) },
      targets: {
        pullCommitVsReadCeiling: { target: 0.7, got: ratio(pull.msgPerSec, readCeiling.msgPerSec) },
        receiveAckVsReadCeiling: {
          target: 0.7,
          got: ratio(receiveAck.msgPerSec, readCeiling.msgPerSec),
        },
      },
    };
  } finally {
    await Promise.all([edgemq.close(), ceiling.close()]);
  }
}

if (import.meta.main) {
  emit("consume", await runConsume());
}
