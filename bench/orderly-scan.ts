/**
 * Orderly receive past a blocked run: the cost of invariant 3's scan.
 *
 * One queue holds RUN messages of one sharding key ("hot") whose first is in
 * flight to an orderly group, so the rest are held back; behind the run, a
 * steady supply of other keys. Measures, for each run length:
 *
 * - `emptyMs`: median latency of a receive that finds nothing (only the
 *   blocked run is stored past the cursor): the scan reads the whole run;
 * - `behindMs`: median latency of a receive that hands out a message of
 *   another key stored behind the run (then acked, so the next is behind too);
 * - `sendMs` / `sendWhileWaitingMs`: median latency of a one-message send of
 *   the blocked key, without and with a receive waiting on the queue (a
 *   waiter looks only at the new messages, so the two should be alike).
 *
 * Up to `BATCH.orderlyWindow` (100 000) offsets past the held message are
 * searched in SQL without bodies; keys further behind wait for the held one.
 *
 *   node bench/orderly-scan.ts            # runs 2 000, 20 000, 90 000
 *   ORDERLY_RUNS=2000,50000 ORDERLY_SAMPLES=20 node bench/orderly-scan.ts
 *
 * Prints one JSON line.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { startLocalServer } from "../scripts/local-server.ts";
import { HttpClient } from "./lib/http.ts";
import { quantile, round } from "./lib/load.ts";
import { emit } from "./lib/report.ts";

const RUNS = (process.env.ORDERLY_RUNS ?? "2000,20000,90000").split(",").map(Number);
const SAMPLES = Number(process.env.ORDERLY_SAMPLES ?? 15);
const FILL_BATCH = 1000;

async function must(client: HttpClient, method: string, p: string, body?: unknown): Promise<any> {
  const r = await client.request(method, p, body === undefined ? undefined : JSON.stringify(body));
  if (r.status !== 200) throw new Error(`${method} ${p} → ${r.status} ${r.body.slice(0, 300)}`);
  return JSON.parse(r.body);
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const v = await fn();
  return [performance.now() - t, v];
}

const median = (xs: number[]) =>
  round(
    quantile(
      [...xs].sort((a, b) => a - b),
      0.5,
    ),
  );

const dataDir = mkdtempSync(path.join(tmpdir(), "edgemq-orderly-bench-"));
const server = await startLocalServer({ port: 0, dataDir, quiet: true });
const client = new HttpClient(server.url, { maxSockets: 4 });
const results: Record<string, unknown>[] = [];
try {
  for (const run of RUNS) {
    const topic = `orderly-${run}`;
    const group = `og-${run}`;
    await must(client, "PUT", `/v1/topics/${topic}`, { queues: 1 });
    await must(client, "PUT", `/v1/groups/${group}`, { orderly: true });
    for (let i = 0; i < run; i += FILL_BATCH) {
      const n = Math.min(FILL_BATCH, run - i);
      const messages = Array.from({ length: n }, (_, j) => ({
        body: `h${i + j}`,
        shardingKey: "hot",
      }));
      await must(client, "POST", `/v1/topics/${topic}/messages?queue=0`, { messages });
    }
    const receive = () =>
      must(client, "POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 32 });
    const head = await receive();
    if (head.messages.length !== 1 || head.messages[0].body !== "h0")
      throw new Error("expected the run's head");

    const empty: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const [ms, r] = await timed(receive);
      if (r.messages.length !== 0) throw new Error("a held message was handed out");
      empty.push(ms);
    }
    const behind: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      await must(client, "POST", `/v1/topics/${topic}/messages?queue=0`, {
        messages: [{ body: `c${i}`, shardingKey: `cold-${i}` }],
      });
      const [ms, r] = await timed(receive);
      if (r.messages.length !== 1 || r.messages[0].body !== `c${i}`)
        throw new Error(
          `the key behind the run starved (run ${run}, sample ${i}): ${JSON.stringify(r.messages.map((m: any) => m.body))}`,
        );
      behind.push(ms);
      await must(client, "POST", `/v1/groups/${group}/topics/${topic}/ack`, {
        receipts: [r.messages[0].receipt],
      });
    }
    // Sends of the blocked key while a receive waits on the queue (each wakes the waiter).
    const sendHot = async (i: number) =>
      (
        await timed(() =>
          must(client, "POST", `/v1/topics/${topic}/messages?queue=0`, {
            messages: [{ body: `w${i}`, shardingKey: "hot" }],
          }),
        )
      )[0];
    const idle: number[] = [];
    for (let i = 0; i < SAMPLES; i++) idle.push(await sendHot(i));
    const waiting = must(client, "POST", `/v1/groups/${group}/topics/${topic}/receive`, {
      max: 1,
      waitMs: 30_000,
    });
    await new Promise((r) => setTimeout(r, 200));
    const withWaiter: number[] = [];
    for (let i = 0; i < SAMPLES; i++) withWaiter.push(await sendHot(SAMPLES + i));
    await must(client, "POST", `/v1/topics/${topic}/messages?queue=0`, {
      messages: [{ body: "free", shardingKey: "free" }],
    });
    const woke = await waiting;
    if (woke.messages[0]?.body !== "free")
      throw new Error("the waiting receive missed the free key");
    results.push({
      run,
      emptyMs: median(empty),
      behindMs: median(behind),
      sendMs: median(idle),
      sendWhileWaitingMs: median(withWaiter),
    });
  }
} finally {
  await server.stop("SIGTERM", { killAfterMs: 10_000 });
  rmSync(dataDir, { recursive: true, force: true });
}
emit("orderly-scan", { samples: SAMPLES, results });
