/**
 * Accumulation (the seed's point 7): publish and consume speed must not drop
 * with a huge backlog, and cold reads from its start must be fast.
 *
 * Runs the real local server (workerd, SQLite Durable Objects on local disk):
 *
 * 1. fill: BACKLOG_N messages (default 5 000 000, 256 B each) stored into one
 *    queue as fast as the server takes them (batches of 1000, 2 in flight),
 *    bounded by BACKLOG_FILL_LIMIT_MS (the figure says how many were stored);
 * 2. the server restarts on the same data, so the backlog is read by a fresh
 *    process (SQLite's caches empty; the OS page cache may be warm);
 * 3. after a warm-up on another topic (JIT, connections) and a first request
 *    that opens the backlog's database (timed: reopenMs), cold read: pull
 *    100 + offset commit, one consumer, from offset 0 and from the middle of
 *    the backlog (one window each, summed);
 * 4. BACKLOG_ROUNDS rounds (default 9) of BACKLOG_MEASURE_MS windows (default
 *    2000), each measuring on an empty topic and on the backlog topic, in
 *    alternating order: send (batches of 100 × 256 B, each acknowledged, 4 in
 *    flight), then consume what that send stored (pull 100 + offset commit,
 *    one consumer). Pairs measured back to back see the same machine load;
 *    the figures are medians over the rounds.
 *
 *   node bench/backlog.ts
 *   BACKLOG_N=500000 node bench/backlog.ts
 *
 * Prints one JSON line: msg/s (wall clock), the server's CPU µs per message
 * (steadier on a shared machine), and the ratios backlog / empty (target ≥
 * 0.9): the median of the rounds' pair ratios; the cold read is compared
 * with the empty topic's consume.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { type LocalServer, startLocalServer } from "../scripts/local-server.ts";
import { cpuMeter } from "./lib/cpu.ts";
import { HttpClient } from "./lib/http.ts";

const N = Number(process.env.BACKLOG_N ?? 5_000_000);
/** Length of each measured window. */
const MEASURE_MS = Number(process.env.BACKLOG_MEASURE_MS ?? 2000);
const ROUNDS = Number(process.env.BACKLOG_ROUNDS ?? 9);
/** The fill stops here whatever its rate, so the run stays bounded. */
const FILL_LIMIT_MS = Number(process.env.BACKLOG_FILL_LIMIT_MS ?? 270_000);
const BODY_BYTES = 256;
const SEND_BATCH = 100;
const SEND_CONCURRENCY = 4;
const PULL_MAX = 100;
const FILL_BATCH = 1000;
const FILL_CONCURRENCY = 2;

const body = "x".repeat(BODY_BYTES);
const batchJson = (n: number) =>
  JSON.stringify({ messages: Array.from({ length: n }, () => ({ body })) });
const SEND_JSON = batchJson(SEND_BATCH);
const FILL_JSON = batchJson(FILL_BATCH);

/** One measured window: messages moved, wall milliseconds, server CPU milliseconds. */
interface Window {
  messages: number;
  ms: number;
  cpuMs: number;
}

const perSec = (w: Window) => Math.round((w.messages * 1000) / w.ms);
const cpuUsPerMsg = (w: Window) => Math.round((w.cpuMs * 10_000) / w.messages) / 10;
const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function dirBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return total;
}

class Bench {
  server!: LocalServer;
  client!: HttpClient;
  readonly dataDir: string;

  constructor(dataDir: string) {
    this.dataDir = dataDir;
  }

  async open(): Promise<void> {
    this.server = await startLocalServer({ port: 0, dataDir: this.dataDir, quiet: true });
    this.client = new HttpClient(this.server.url, { maxSockets: 16 });
  }

  async close(): Promise<void> {
    this.client?.close();
    await this.server?.stop("SIGTERM", { killAfterMs: 10_000 });
  }

  async must(method: string, p: string, text?: string): Promise<any> {
    const r = await this.client.request(method, p, text);
    if (r.status !== 200) throw new Error(`${method} ${p} → ${r.status} ${r.body.slice(0, 300)}`);
    return JSON.parse(r.body);
  }

  async window(fn: () => Promise<number>): Promise<Window> {
    const cpu = cpuMeter(this.server.pid);
    const start = performance.now();
    const messages = await fn();
    return { messages, ms: performance.now() - start, cpuMs: cpu.stop() };
  }

  /** Batches of 100 from several producers for MEASURE_MS, each acknowledged as stored. */
  send(topic: string): Promise<Window> {
    return this.window(async () => {
      const end = performance.now() + MEASURE_MS;
      let sent = 0;
      await Promise.all(
        Array.from({ length: SEND_CONCURRENCY }, async () => {
          while (performance.now() < end) {
            const r = await this.must("POST", `/v1/topics/${topic}/messages?queue=0`, SEND_JSON);
            if (
              r.results.length !== SEND_BATCH ||
              r.results.some((x: { status: string }) => x.status !== "stored")
            ) {
              throw new Error("a send was not stored");
            }
            sent += SEND_BATCH;
          }
        }),
      );
      return sent;
    });
  }

  /** One consumer pulling 100 by its group's offset and committing, from `from` until `until` or MEASURE_MS. */
  async consume(topic: string, group: string, from: number, until: number): Promise<Window> {
    const commit = (offset: number) =>
      this.must(
        "PUT",
        `/v1/groups/${group}/topics/${topic}/queues/0/offset`,
        JSON.stringify({ offset }),
      );
    await commit(from);
    return this.window(async () => {
      const end = performance.now() + MEASURE_MS;
      let offset = from;
      let read = 0;
      while (offset < until && performance.now() < end) {
        const r = await this.must(
          "GET",
          `/v1/topics/${topic}/queues/0/messages?group=${group}&max=${PULL_MAX}`,
        );
        if (r.messages.length === 0)
          throw new Error(`nothing to read at ${offset} (until ${until})`);
        read += r.messages.length;
        offset = r.nextOffset;
        await commit(offset);
      }
      return read;
    });
  }

  /** Stores `n` messages as fast as the server takes them, within FILL_LIMIT_MS. */
  fill(topic: string, n: number): Promise<Window> {
    return this.window(async () => {
      const end = performance.now() + FILL_LIMIT_MS;
      let issued = 0;
      let stored = 0;
      await Promise.all(
        Array.from({ length: FILL_CONCURRENCY }, async () => {
          while (issued < n && performance.now() < end) {
            const count = Math.min(FILL_BATCH, n - issued);
            issued += count;
            const r = await this.must(
              "POST",
              `/v1/topics/${topic}/messages?queue=0`,
              count === FILL_BATCH ? FILL_JSON : batchJson(count),
            );
            stored += r.results.length;
          }
        }),
      );
      return stored;
    });
  }

  async maxOffset(topic: string): Promise<number> {
    return (await this.must("GET", `/v1/topics/${topic}/queues/0/messages?offset=0&max=1`))
      .maxOffset;
  }
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(process.env.BENCH_DIR ?? tmpdir(), "edgemq-backlog-"));
  const b = new Bench(dataDir);
  try {
    await b.open();
    const run = Date.now().toString(36);
    const backlog = `backlog-${run}`;
    await b.must("PUT", `/v1/topics/${backlog}`, JSON.stringify({ queues: 1 }));

    const filled = await b.fill(backlog, N);
    await b.close();
    await b.open();
    // Warm the fresh process up (JIT, connections) on another topic, so the
    // cold read measures cold data rather than cold code.
    const warm = `warm-${run}`;
    await b.must("PUT", `/v1/topics/${warm}`, JSON.stringify({ queues: 1 }));
    const warmed = await b.send(warm);
    await b.consume(warm, "w", 0, warmed.messages);
    // The first request to the backlog's shard opens its database (and reads
    // back its write-ahead log): timed on its own, reading only the last message.
    const opening = performance.now();
    await b.must(
      "GET",
      `/v1/topics/${backlog}/queues/0/messages?offset=${filled.messages - 1}&max=1`,
    );
    const reopenMs = Math.round(performance.now() - opening);
    // Two regions of the backlog nobody has read since the restart: its start and its middle.
    const coldStart = await b.consume(backlog, "cold0", 0, filled.messages);
    const middle = Math.floor(filled.messages / 2);
    const coldMiddle = await b.consume(backlog, "cold1", middle, filled.messages);
    const cold: Window = {
      messages: coldStart.messages + coldMiddle.messages,
      ms: coldStart.ms + coldMiddle.ms,
      cpuMs: coldStart.cpuMs + coldMiddle.cpuMs,
    };

    const rounds: {
      empty: { send: Window; consume: Window };
      backlog: { send: Window; consume: Window };
    }[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const empty = `empty-${run}-${i}`;
      await b.must("PUT", `/v1/topics/${empty}`, JSON.stringify({ queues: 1 }));
      const onEmpty = async () => {
        const send = await b.send(empty);
        return { send, consume: await b.consume(empty, "c", 0, send.messages) };
      };
      const onBacklog = async () => {
        const tail = await b.maxOffset(backlog);
        const send = await b.send(backlog);
        return { send, consume: await b.consume(backlog, `tail${i}`, tail, tail + send.messages) };
      };
      // Alternate which goes first, so a drift in the machine's load favours neither.
      if (i % 2 === 0) {
        const e = await onEmpty();
        rounds.push({ empty: e, backlog: await onBacklog() });
      } else {
        const bl = await onBacklog();
        rounds.push({ empty: await onEmpty(), backlog: bl });
      }
    }
    await b.close();

    const pairRatio = (f: (r: (typeof rounds)[number]) => number) =>
      Math.round(median(rounds.map(f)) * 1000) / 1000;
    const med = (pick: (r: (typeof rounds)[number]) => Window, f: (w: Window) => number) =>
      median(rounds.map((r) => f(pick(r))));
    const figures = (pick: (r: (typeof rounds)[number]) => Window) => ({
      perSec: med(pick, perSec),
      cpuUsPerMsg: med(pick, cpuUsPerMsg),
    });
    const empty = { send: figures((r) => r.empty.send), consume: figures((r) => r.empty.consume) };
    const withBacklog = {
      send: figures((r) => r.backlog.send),
      consume: figures((r) => r.backlog.consume),
    };
    const coldRead = {
      perSec: perSec(cold),
      cpuUsPerMsg: cpuUsPerMsg(cold),
      messages: cold.messages,
    };
    const result = {
      bench: "backlog",
      bodyBytes: BODY_BYTES,
      sendBatch: SEND_BATCH,
      sendConcurrency: SEND_CONCURRENCY,
      pullMax: PULL_MAX,
      measureMs: MEASURE_MS,
      rounds: ROUNDS,
      backlogTarget: N,
      backlogStored: filled.messages,
      fillSeconds: Math.round(filled.ms / 100) / 10,
      fillPerSec: perSec(filled),
      fillCpuUsPerMsg: cpuUsPerMsg(filled),
      dataDirBytes: dirBytes(dataDir),
      reopenMs,
      empty,
      backlog: withBacklog,
      coldRead,
      // Every round's msg/s, to judge the noise of a shared machine.
      samples: {
        emptySend: rounds.map((r) => perSec(r.empty.send)),
        backlogSend: rounds.map((r) => perSec(r.backlog.send)),
        emptyConsume: rounds.map((r) => perSec(r.empty.consume)),
        backlogConsume: rounds.map((r) => perSec(r.backlog.consume)),
      },
      // Throughput ratios backlog / empty; the CPU ones compare messages per server CPU second.
      // Backlog / empty: send and consume as the median of each round's pair
      // (measured back to back), cold read against the empty consume median.
      ratios: {
        send: pairRatio((r) => perSec(r.backlog.send) / perSec(r.empty.send)),
        consume: pairRatio((r) => perSec(r.backlog.consume) / perSec(r.empty.consume)),
        coldRead: ratio(coldRead.perSec, empty.consume.perSec),
        sendCpu: pairRatio((r) => cpuUsPerMsg(r.empty.send) / cpuUsPerMsg(r.backlog.send)),
        consumeCpu: pairRatio((r) => cpuUsPerMsg(r.empty.consume) / cpuUsPerMsg(r.backlog.consume)),
        coldReadCpu: ratio(empty.consume.cpuUsPerMsg, coldRead.cpuUsPerMsg),
      },
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await b.close().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
