/**
 * Publish throughput: acknowledged sends (answered after the shard's SQLite
 * commit) of 256 B and 4 KiB messages, with 1, 16 and 64 concurrent
 * producers, one message per HTTP request and 100-message batches, and 64
 * (and 1000) concurrent single `send()` calls through the SDK, over HTTP
 * (auto-batching with a linger) and over sessions (the default: adaptive
 * batching, docs/protocol.md). Each
 * figure comes with the bare runtime's ceiling measured in the same run (the
 * ceiling worker, same request shape and concurrency) and edgemq's ratio to it.
 *
 *   node bench/publish.ts            # prints one JSON line
 *   BENCH_SECONDS=5 node bench/publish.ts
 *
 * Topics have one queue, so every case measures one shard against one bare
 * Durable Object.
 */
import { Producer } from "../client/index.ts";
import { clientFetch, HttpClient } from "./lib/http.ts";
import { payload } from "./lib/load.ts";
import { emit, ratio, type Throughput, throughput } from "./lib/report.ts";
import { type BenchServer, CEILING_ENTRY, startBenchServer } from "./lib/servers.ts";

const SIZES = [256, 4096];
const CONCURRENCY = [1, 16, 64];
const BATCH = 100;
const SDK_CALLERS = 64;

interface Case {
  name: string;
  size: number;
  concurrency: number;
  perRequest: number;
  edgemq: Throughput;
  ceiling: Throughput;
  ratio: number;
  cpuRatio: number;
}

function batchBody(size: number, n: number, seed: number): string {
  return JSON.stringify({
    messages: Array.from({ length: n }, (_, i) => ({ body: payload(size, seed + i) })),
  });
}

async function post(client: HttpClient, path: string, body: string, n: number): Promise<number> {
  const r = await client.request("POST", path, body);
  if (r.status !== 200) throw new Error(`${r.status} ${r.body.slice(0, 200)}`);
  return n;
}

let topicSeq = 0;
async function newTopic(edgemq: BenchServer): Promise<string> {
  const topic = `pub-${++topicSeq}`;
  await edgemq.client.json("PUT", `/v1/topics/${topic}`, { queues: 1 });
  return topic;
}

export async function runPublish(): Promise<Record<string, unknown>> {
  const [edgemq, ceiling] = await Promise.all([
    startBenchServer(),
    startBenchServer({ entry: CEILING_ENTRY }),
  ]);
  const cases: Case[] = [];
  try {
    const measurePair = async (
      name: string,
      size: number,
      concurrency: number,
      perRequest: number,
      edgemqOp: (topic: string) => (w: number, seq: number) => Promise<number>,
      ceilingPerRequest = perRequest,
      ceilingConcurrency = concurrency,
    ) => {
      const shard = `${name}-${size}`;
      const body = batchBody(size, ceilingPerRequest, 0);
      // The ceiling first, then edgemq at once: both see the same machine state.
      const c = await throughput({
        pid: ceiling.server.pid,
        concurrency: ceilingConcurrency,
        op: () => post(ceiling.client, `/append?shard=${shard}`, body, ceilingPerRequest),
      });
      const topic = await newTopic(edgemq);
      const e = await throughput({ pid: edgemq.server.pid, concurrency, op: edgemqOp(topic) });
      const out: Case = {
        name,
        size,
        concurrency,
        perRequest,
        edgemq: e,
        ceiling: c,
        ratio: ratio(e.msgPerSec, c.msgPerSec),
        cpuRatio: ratio(e.cpuUsPerMsg, c.cpuUsPerMsg),
      };
      cases.push(out);
      process.stderr.write(
        `publish ${name} ${size}B c${concurrency}: ${e.msgPerSec} msg/s (${e.cpuUsPerMsg} µs cpu/msg), ` +
          `ceiling ${c.msgPerSec} (${c.cpuUsPerMsg}) → ${out.ratio}\n`,
      );
    };

    for (const size of SIZES) {
      for (const concurrency of CONCURRENCY) {
        const one = batchBody(size, 1, 0);
        await measurePair(
          "http-1-per-request",
          size,
          concurrency,
          1,
          (topic) => () => post(edgemq.client, `/v1/topics/${topic}/messages`, one, 1),
        );
        const batch = batchBody(size, BATCH, 0);
        await measurePair(
          `http-${BATCH}-per-request`,
          size,
          concurrency,
          BATCH,
          (topic) => () => post(edgemq.client, `/v1/topics/${topic}/messages`, batch, BATCH),
        );
      }
      // The SDK: callers each awaiting a single send() in a loop, over HTTP
      // (its batches hold what is pending, ≤ 64 messages, one request in
      // flight, so the matching ceiling is 64 rows per request, one at a
      // time) and over sessions (its default where a WebSocket exists:
      // adaptive batching, one frame in flight per queue). 1000 callers is the
      // "1,000 send() outstanding" shape.
      const variants: { name: string; callers: number; sessions: boolean; lingerMs?: number }[] = [
        { name: "sdk-send-default-linger", callers: SDK_CALLERS, sessions: false },
        { name: "sdk-send-linger-0", callers: SDK_CALLERS, sessions: false, lingerMs: 0 },
        { name: "sdk-send-session", callers: SDK_CALLERS, sessions: true },
      ];
      if (size === 256) {
        variants.push(
          { name: "sdk-send-1000-outstanding-http", callers: 1000, sessions: false, lingerMs: 0 },
          { name: "sdk-send-1000-outstanding-session", callers: 1000, sessions: true },
        );
      }
      for (const v of variants) {
        const sdkClient = new HttpClient(edgemq.server.url, { maxSockets: 8 });
        let producer: Producer | undefined;
        const text = payload(size, 7);
        await measurePair(
          v.name,
          size,
          v.callers,
          1,
          (topic) => {
            producer = new Producer({
              endpoint: edgemq.server.url,
              fetch: clientFetch(sdkClient),
              sessions: v.sessions,
              ...(v.lingerMs !== undefined && { batch: { lingerMs: v.lingerMs } }),
            });
            const p = producer;
            return async () => {
              const r = await p.send({ topic, body: text });
              if (r.status !== "stored") throw new Error(`status ${r.status}`);
              return 1;
            };
          },
          Math.min(v.callers, 1000),
          1,
        );
        await producer?.close();
        sdkClient.close();
      }
    }
  } finally {
    await Promise.all([edgemq.close(), ceiling.close()]);
  }
  const find = (name: string, size: number, c: number) =>
    cases.find((x) => x.name === name && x.size === size && x.concurrency === c);
  const batched = find(`http-${BATCH}-per-request`, 256, 16);
  const single = find("http-1-per-request", 256, 64);
  const sdk = find("sdk-send-linger-0", 256, SDK_CALLERS);
  const sdkDefault = find("sdk-send-default-linger", 256, SDK_CALLERS);
  const sdkSession = find("sdk-send-session", 256, SDK_CALLERS);
  const outstanding = find("sdk-send-1000-outstanding-session", 256, 1000);
  const outstandingHttp = find("sdk-send-1000-outstanding-http", 256, 1000);
  return {
    cases,
    targets: {
      batchedPublishVsCeiling: {
        target: 0.7,
        got: batched?.ratio,
        case: "256 B, 100/request, 16 producers",
      },
      sdkSendMsgPerSec: {
        target: 20000,
        got: sdk?.edgemq.msgPerSec,
        defaultLinger: sdkDefault?.edgemq.msgPerSec,
        session: sdkSession?.edgemq.msgPerSec,
        case: "256 B, 64 concurrent send(), lingerMs 0 over HTTP; session: the SDK's default",
      },
      sdkOutstanding1000MsgPerSec: {
        session: outstanding?.edgemq.msgPerSec,
        http: outstandingHttp?.edgemq.msgPerSec,
        case: "256 B, 1000 send() outstanding",
      },
      onePerRequestVsCeiling: {
        target: 0.9,
        got: single?.ratio,
        case: "256 B, 1/request, 64 producers",
      },
    },
  };
}

if (import.meta.main) {
  emit("publish", await runPublish());
}
