/**
 * Parked long-polls must not amplify work (issue 16, item 6): the latency of
 * an ack while N long-polling pulls with a filter that matches nothing are
 * parked on the same shard, then after those clients hung up.
 *
 * One queue holds BACKLOG messages of tag "other" (BODY_BYTES each). A group
 * receives one message at a time and acks it; each ack is what wakes the
 * shard's watchers. The parked pulls (`filter=wanted`, `waitMs=30000`) each
 * scanned the backlog once and wait past it. Measures, for each N of
 * PARKED_COUNTS:
 *
 * - `ackMs`: median and p90 ack latency with N pulls parked;
 * - `sendMs`: median and p90 latency of a send of SEND_BATCH messages of tag
 *   "other" (an append the parked pulls must look at: how many times the
 *   appended rows are read, and whether their bodies are);
 * - `ackAfterHangUpMs`: ack latency once the N clients closed their
 *   connections (a wait whose client is gone must cost nothing).
 *
 * `EDGEMQ_ENTRY=/path/to/other/src/index.ts` measures another build (the
 * code before a change, from a `git worktree` of it).
 *
 *   node bench/parked-waits.ts
 *   PARKED_COUNTS=0,100,400 PARKED_SAMPLES=30 node bench/parked-waits.ts
 *
 * Prints one JSON line.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { type ClientRequest, Agent, request } from "node:http";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { startLocalServer } from "../scripts/local-server.ts";
import { HttpClient } from "./lib/http.ts";
import { quantile, round, sleep } from "./lib/load.ts";
import { emit } from "./lib/report.ts";

const COUNTS = (process.env.PARKED_COUNTS ?? "0,100").split(",").map(Number);
const SAMPLES = Number(process.env.PARKED_SAMPLES ?? 20);
const BACKLOG = Number(process.env.PARKED_BACKLOG ?? 4000);
const BODY_BYTES = Number(process.env.PARKED_BODY_BYTES ?? 2048);
const SEND_BATCH = Number(process.env.PARKED_SEND_BATCH ?? 500);
const ENTRY = process.env.EDGEMQ_ENTRY || undefined;

const stat = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: round(quantile(s, 0.5)), p90: round(quantile(s, 0.9)) };
};

/** N parked pulls on their own connections, so hanging up closes exactly them. */
function park(url: URL, topic: string, n: number) {
  const agent = new Agent({ keepAlive: false, maxSockets: n + 1 });
  const answered: Promise<number>[] = [];
  const requests: ClientRequest[] = [];
  for (let i = 0; i < n; i++) {
    answered.push(
      new Promise((resolve) => {
        const req = request(
          {
            host: url.hostname,
            port: Number(url.port),
            agent,
            path: `/v1/topics/${topic}/queues/0/messages?offset=0&filter=wanted&waitMs=30000`,
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("error", () => resolve(-1));
        req.end();
        requests.push(req);
      }),
    );
  }
  // Reset, as a client that is gone does (local workerd does not notice a graceful half-close).
  return {
    answered,
    hangUp: () => {
      for (const req of requests) req.socket?.resetAndDestroy();
      agent.destroy();
    },
  };
}

const dataDir = mkdtempSync(path.join(process.env.BENCH_DIR ?? tmpdir(), "edgemq-parked-bench-"));
const server = await startLocalServer({
  port: 0,
  dataDir,
  quiet: true,
  ...(ENTRY !== undefined && { entry: ENTRY }),
});
const client = new HttpClient(server.url, { maxSockets: 4 });
const url = new URL(server.url);
const runs: Record<string, unknown>[] = [];
try {
  for (const n of COUNTS) {
    const topic = `parked-${n}`;
    const group = `pg-${n}`;
    await client.json("PUT", `/v1/topics/${topic}`, { queues: 1 });
    const body = "x".repeat(BODY_BYTES);
    for (let i = 0; i < BACKLOG; i += 500) {
      const messages = Array.from({ length: Math.min(500, BACKLOG - i) }, () => ({
        body,
        tag: "other",
      }));
      await client.json("POST", `/v1/topics/${topic}/messages`, { messages });
    }
    const ackOnce = async () => {
      const got = await client.json("POST", `/v1/groups/${group}/topics/${topic}/receive`, {
        max: 1,
      });
      const receipt = got.messages[0]?.receipt;
      if (!receipt) throw new Error("nothing to receive");
      const t = performance.now();
      await client.json("POST", `/v1/groups/${group}/topics/${topic}/ack`, { receipts: [receipt] });
      return performance.now() - t;
    };
    const parked = park(url, topic, n);
    // Every parked pull scans the backlog once, then waits on a watcher.
    await sleep(1000 + n * 20);
    const during: number[] = [];
    for (let i = 0; i < SAMPLES; i++) during.push(await ackOnce());
    const sends: number[] = [];
    const batch = Array.from({ length: SEND_BATCH }, () => ({ body, tag: "other" }));
    for (let i = 0; i < Math.max(3, Math.floor(SAMPLES / 4)); i++) {
      const t = performance.now();
      await client.json("POST", `/v1/topics/${topic}/messages`, { messages: batch });
      sends.push(performance.now() - t);
    }
    parked.hangUp();
    await Promise.all(parked.answered);
    await sleep(500);
    const after: number[] = [];
    for (let i = 0; i < SAMPLES; i++) after.push(await ackOnce());
    runs.push({
      parked: n,
      ackMs: stat(during),
      sendMs: stat(sends),
      ackAfterHangUpMs: stat(after),
    });
  }
  emit("parked-waits", {
    backlog: BACKLOG,
    bodyBytes: BODY_BYTES,
    sendBatch: SEND_BATCH,
    samples: SAMPLES,
    runs,
    entry: ENTRY ?? "src/index.ts",
  });
} finally {
  client.close();
  await server.stop("SIGTERM", { killAfterMs: 5000 });
  rmSync(dataDir, { recursive: true, force: true });
}
