/**
 * Push delivery: how fast the broker POSTs a backlog to an endpoint, and how
 * late each message arrives there after it was stored (api.md, "Push
 * subscriptions").
 *
 * Runs the real local server (workerd, SQLite Durable Objects on local disk,
 * real alarms and outbound fetches) and a node:http endpoint on 127.0.0.1
 * that answers 204 at once. Three rounds:
 * - throughput, 1 queue and PUSH_QUEUES (default 4) queues: PUSH_MESSAGES
 *   (default 3000) messages sent in batches of 100 while the subscription is
 *   paused, then resumed; messages per second from the resume until the last
 *   one arrives. Each queue's shard runs at most 6 fetches at once
 *   (PUSH_FETCHES_PER_SHARD), so this shows how it scales with queues.
 * - the same-run reference: this process POSTing the same bodies to the same
 *   endpoint with as many requests at once as the broker may have (6 per
 *   queue): what the endpoint and loopback give; `ratio` = push / reference.
 * - lateness: PUSH_RATE (default 200) messages a second, one per send, for
 *   PUSH_SECONDS (default 5) seconds to a PUSH_QUEUES-queue topic; a
 *   message's lateness is its arrival at the endpoint minus its `storedAt`
 *   (the shard's clock; same machine, same clock).
 *
 *   node bench/push.ts
 *   PUSH_MESSAGES=10000 PUSH_QUEUES=8 node bench/push.ts
 *
 * Prints one JSON line.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Agent, request } from "node:http";
import { startBenchServer } from "./lib/servers.ts";
import { quantile, round, sleep } from "./lib/load.ts";
import { emit } from "./lib/report.ts";

const MESSAGES = Number(process.env.PUSH_MESSAGES ?? 3000);
const QUEUES = Number(process.env.PUSH_QUEUES ?? 4);
const RATE = Number(process.env.PUSH_RATE ?? 200);
const SECONDS = Number(process.env.PUSH_SECONDS ?? 5);
/** The broker's fetches per shard (src/broker/timers/push-timing.ts). */
const FETCHES_PER_SHARD = 6;

/** Arrivals per subscription: when each message came, and its storedAt. */
const arrivals = new Map<string, { at: number; storedAt: number }[]>();
const endpoint = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const at = Date.now();
    const name = (req.url ?? "").split("/")[2] ?? "";
    const list = arrivals.get(name);
    if (list) {
      const m = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { storedAt: number };
      list.push({ at, storedAt: m.storedAt });
    }
    res.writeHead(204).end();
  });
});
await new Promise<void>((r) => endpoint.listen(0, "127.0.0.1", r));
const hook = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}`;

const bench = await startBenchServer();
const { client } = bench;

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(5);
  return cond();
}

async function subscription(queues: number, paused: boolean) {
  const id = `push-${queues}q-${Date.now().toString(36)}`;
  await client.json("PUT", `/v1/topics/${id}`, { queues });
  arrivals.set(id, []);
  await client.json("PUT", `/v1/push/${id}`, {
    topic: id,
    url: `${hook}/s/${id}`,
    maxConcurrency: FETCHES_PER_SHARD * queues,
    paused,
  });
  return id;
}

const body = JSON.stringify({ n: 0, pad: "x".repeat(200) });

/** A backlog delivered from the resume on: messages per second. */
async function throughput(queues: number) {
  const id = await subscription(queues, true);
  for (let sent = 0; sent < MESSAGES; sent += 100) {
    const messages = Array.from({ length: Math.min(100, MESSAGES - sent) }, () => ({ body }));
    await client.json("POST", `/v1/topics/${id}/messages`, { messages });
  }
  const t0 = Date.now();
  await client.json("PUT", `/v1/push/${id}`, { paused: false });
  const done = await until(() => arrivals.get(id)!.length >= MESSAGES, 120_000);
  const seconds = (Date.now() - t0) / 1000;
  const got = arrivals.get(id)!.length;
  await client.json("DELETE", `/v1/push/${id}`);
  return { queues, messages: got, complete: done, msgPerSec: round(got / seconds) };
}

/** This process POSTing to the endpoint with `concurrency` requests at once: the reference. */
async function reference(concurrency: number) {
  const name = `ref-${concurrency}`;
  arrivals.set(name, []);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const payload = JSON.stringify({ msgId: "x", storedAt: 0, body });
  let next = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < MESSAGES) {
        await new Promise<void>((resolve, reject) => {
          const req = request(`${hook}/s/${name}`, { method: "POST", agent }, (res) => {
            res.resume();
            res.on("end", () => resolve());
          });
          req.on("error", reject);
          req.setHeader("content-type", "application/json");
          req.end(payload);
        });
      }
    }),
  );
  agent.destroy();
  return { concurrency, msgPerSec: round(MESSAGES / ((Date.now() - t0) / 1000)) };
}

/** A paced stream: each message's arrival minus its storedAt. */
async function lateness(queues: number) {
  const id = await subscription(queues, false);
  const total = RATE * SECONDS;
  const t0 = Date.now();
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    sends.push(client.json("POST", `/v1/topics/${id}/messages`, { messages: [{ body }] }));
  }
  await Promise.all(sends);
  await until(() => arrivals.get(id)!.length >= total, 30_000);
  const late = arrivals
    .get(id)!
    .map((a) => a.at - a.storedAt)
    .sort((a, b) => a - b);
  await client.json("DELETE", `/v1/push/${id}`);
  return {
    queues,
    ratePerSec: RATE,
    messages: late.length,
    latenessMs: {
      p50: quantile(late, 0.5),
      p99: quantile(late, 0.99),
      max: late.at(-1) ?? null,
    },
  };
}

try {
  const one = await throughput(1);
  const many = await throughput(QUEUES);
  const ref = await reference(FETCHES_PER_SHARD * QUEUES);
  const late = await lateness(QUEUES);
  emit("push", {
    fetchesPerShard: FETCHES_PER_SHARD,
    one,
    many,
    reference: ref,
    ratio: round(many.msgPerSec / ref.msgPerSec),
    lateness: late,
  });
} finally {
  await bench.close();
  endpoint.closeAllConnections();
  endpoint.close();
}
