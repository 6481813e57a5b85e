/**
 * End-to-end latency at steady rates: one producer sends each rate of
 * LATENCY_RATES messages a second in turn (default 100, 300 and 1000, to show
 * where the knee is; LATENCY_RATE runs one rate), each message in its own
 * acknowledged request, while consumers long-poll. Latency is from the
 * moment the send request starts to the moment a consumer's answer holding the message is parsed
 * (same process, monotonic clock). Two consumer styles, one after the other:
 *
 * - receive: 4 consumers of one group long-poll `receive` (waitMs 20 000)
 *   and ack what they get (acks not awaited before the next receive);
 * - pull: one consumer per queue long-polls `pull` by offset (waitMs 20 000);
 * - session: the SDK with its defaults, over streaming sessions
 *   (docs/protocol.md): each message sent with `Producer.send`, consumed by a
 *   `PushConsumer` (pushed by the shard, acked by the SDK).
 *
 * LATENCY_STYLES picks styles (default receive,pull,session).
 *
 * The consumers have their own HTTP client (own keep-alive agent), so a poll
 * or an ack never waits in the client for a socket held by a send.
 *
 * The topic has one queue (LATENCY_QUEUES): locally every shard's commit is
 * an fsync that stalls the one workerd process, and one shard lets the
 * sends, claims and acks of a moment share one (group commit).
 *
 *   node bench/latency.ts                      # prints one JSON line
 *   LATENCY_SECONDS=10 LATENCY_RATE=1000 LATENCY_QUEUES=4 node bench/latency.ts
 *   LATENCY_RATES=50,100,200,500 node bench/latency.ts
 *
 * The first second of each run is warm-up and not counted; each rate's window
 * is LATENCY_SECONDS (default 3: three rates, two styles, ≈ 30 s in all).
 */
import { Producer, PushConsumer } from "../client/index.ts";
import { cpuMeter } from "./lib/cpu.ts";
import { HttpClient } from "./lib/http.ts";
import { quantile, round, sleep } from "./lib/load.ts";
import { emit } from "./lib/report.ts";
import { type BenchServer, startBenchServer } from "./lib/servers.ts";

const RATES = (process.env.LATENCY_RATE ?? process.env.LATENCY_RATES ?? "100,300,1000")
  .split(",")
  .map(Number)
  .filter((r) => r > 0);
const SECONDS = Number(process.env.LATENCY_SECONDS ?? 3);
const WARMUP_MS = 1000;
const QUEUES = Number(process.env.LATENCY_QUEUES ?? 1);
const WAIT_MS = 20_000;
const RECEIVERS = 4;
const STYLES = new Set((process.env.LATENCY_STYLES ?? "receive,pull,session").split(","));

/** Sends one message with `body`; resolves true when it was acknowledged. */
type SendOne = (body: string) => Promise<boolean>;

interface Stats {
  messages: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  sendP50Ms: number;
  sendP99Ms: number;
  sentPerSec: number;
  cpuUsPerMsg: number;
  /** Server CPU over the window, in % of one core (the workerd thread does the work). */
  serverCpuPct: number;
  /** Most sends waiting in the producer's agent for a socket (client-side queueing). */
  maxQueuedSends: number;
  errors: number;
}

/** Requests waiting in an agent for a free socket, over all origins. */
function queued(client: HttpClient): number {
  let n = 0;
  for (const q of Object.values(client.agent.requests)) n += q?.length ?? 0;
  return n;
}

/**
 * Sends at `rate` for SECONDS (plus warm-up), open loop: each tick sends what
 * is due, so a slow answer never slows the schedule. Resolves when every send
 * has been answered.
 */
async function produce(
  client: HttpClient,
  topic: string,
  rate: number,
  onStart: () => void,
  sendOne?: SendOne,
): Promise<{
  sendMs: number[];
  sent: number;
  errors: number;
  elapsedMs: number;
  maxQueued: number;
}> {
  const total = Math.round(rate * (SECONDS + WARMUP_MS / 1000));
  const sendMs: number[] = [];
  let sent = 0;
  let errors = 0;
  const pending = new Set<Promise<void>>();
  const t0 = performance.now();
  let started = false;
  let maxQueued = 0;
  while (sent < total) {
    const now = performance.now();
    if (!started && now - t0 >= WARMUP_MS) {
      started = true;
      onStart();
    }
    const due = Math.min(total, Math.floor(((now - t0) * rate) / 1000) + 1);
    for (; sent < due; sent++) {
      const at = performance.now();
      const send: Promise<boolean> = sendOne
        ? sendOne(String(at))
        : client
            .request(
              "POST",
              `/v1/topics/${topic}/messages`,
              JSON.stringify({ messages: [{ body: String(at) }] }),
            )
            .then((r) => r.status === 200);
      const p = send
        .then(
          (ok) => {
            if (!ok) errors++;
            else if (at - t0 >= WARMUP_MS) sendMs.push(performance.now() - at);
          },
          () => void errors++,
        )
        .finally(() => pending.delete(p));
      pending.add(p);
    }
    if (started) maxQueued = Math.max(maxQueued, queued(client));
    // Bounded: at most one tick of backlog in flight beyond what the server answers.
    if (pending.size > rate) await Promise.race(pending);
    await sleep(1);
  }
  await Promise.all(pending);
  return { sendMs, sent, errors, elapsedMs: performance.now() - t0 - WARMUP_MS, maxQueued };
}

async function scenario(
  s: BenchServer,
  name: string,
  rate: number,
  consume: (
    topic: string,
    record: (bodies: string[]) => void,
    stopped: () => boolean,
  ) => Promise<void>,
  sendOne?: (topic: string) => SendOne,
): Promise<Stats> {
  const topic = `latency-${name}-${rate}`;
  await s.client.json("PUT", `/v1/topics/${topic}`, { queues: QUEUES });
  const latencies: number[] = [];
  let countFrom = Number.POSITIVE_INFINITY;
  const record = (bodies: string[]) => {
    const now = performance.now();
    for (const b of bodies) {
      const at = Number(b);
      if (at >= countFrom) latencies.push(now - at);
    }
  };
  let stop = false;
  const consumers = consume(topic, record, () => stop);
  await sleep(300); // consumers are waiting before the first send
  let meter: { stop(): number } | undefined;
  let meterFrom = 0;
  const produced = await produce(
    s.client,
    topic,
    rate,
    () => {
      countFrom = performance.now();
      meter = cpuMeter(s.server.pid);
      meterFrom = performance.now();
    },
    sendOne?.(topic),
  );
  // Let the last messages arrive (bounded), then release the consumers.
  const deadline = performance.now() + 5000;
  while (latencies.length < produced.sendMs.length && performance.now() < deadline) await sleep(20);
  const cpu = meter ? meter.stop() : Number.NaN;
  const meteredMs = performance.now() - meterFrom;
  stop = true;
  // Messages end the consumers' long-polls (bounded: a few rounds).
  let ended = false;
  void consumers.finally(() => (ended = true));
  for (let round = 0; round < 100 && !ended; round++) {
    for (let q = 0; q < QUEUES; q++) {
      await s.client.request(
        "POST",
        `/v1/topics/${topic}/messages?queue=${q}`,
        JSON.stringify({ messages: [{ body: "0" }] }),
      );
    }
    await sleep(20);
  }
  await consumers;
  latencies.sort((a, b) => a - b);
  const sendMs = produced.sendMs.sort((a, b) => a - b);
  return {
    messages: latencies.length,
    p50Ms: round(quantile(latencies, 0.5)),
    p90Ms: round(quantile(latencies, 0.9)),
    p99Ms: round(quantile(latencies, 0.99)),
    p999Ms: round(quantile(latencies, 0.999)),
    maxMs: round(latencies.at(-1) ?? Number.NaN),
    sendP50Ms: round(quantile(sendMs, 0.5)),
    sendP99Ms: round(quantile(sendMs, 0.99)),
    sentPerSec: round((sendMs.length * 1000) / produced.elapsedMs),
    cpuUsPerMsg: round((cpu * 1000) / Math.max(1, sendMs.length)),
    serverCpuPct: round((cpu * 100) / meteredMs),
    maxQueuedSends: produced.maxQueued,
    errors: produced.errors + (produced.sendMs.length - latencies.length),
  };
}

/** Both consumer styles at one rate; `consumer` is the consumers' own client. */
async function atRate(
  s: BenchServer,
  consumer: HttpClient,
  rate: number,
): Promise<{ ratePerSec: number; receive?: Stats; pull?: Stats; session?: Stats }> {
  const out: { ratePerSec: number; receive?: Stats; pull?: Stats; session?: Stats } = {
    ratePerSec: rate,
  };
  if (STYLES.has("session")) {
    // The SDK's defaults: sessions wherever a WebSocket exists (Node >= 22 here).
    const producer = new Producer({ endpoint: s.server.url });
    try {
      out.session = await scenario(
        s,
        "session",
        rate,
        async (topic, record, stopped) => {
          const push = new PushConsumer({ endpoint: s.server.url, group: "latency-session" });
          push.subscribe(topic, (m) => record([m.body]));
          while (!stopped()) await sleep(20);
          await push.shutdown();
        },
        (topic) => (body) =>
          producer.send({ topic, body }).then(
            () => true,
            () => false,
          ),
      );
    } finally {
      await producer.close();
    }
    process.stderr.write(`latency ${rate}/s session: ${JSON.stringify(out.session)}\n`);
  }
  if (!STYLES.has("receive")) return out;
  const receive = await scenario(s, "receive", rate, async (topic, record, stopped) => {
    const acks = new Set<Promise<unknown>>();
    await Promise.all(
      Array.from({ length: RECEIVERS }, async () => {
        while (!stopped()) {
          const r = await consumer.json<{ messages: { body: string; receipt: string }[] }>(
            "POST",
            `/v1/groups/latency/topics/${topic}/receive`,
            { max: 32, waitMs: WAIT_MS },
          );
          if (r.messages.length === 0) continue;
          record(r.messages.map((m) => m.body));
          const ack = consumer.json("POST", `/v1/groups/latency/topics/${topic}/ack`, {
            receipts: r.messages.map((m) => m.receipt),
          });
          acks.add(ack);
          void ack.finally(() => acks.delete(ack));
        }
      }),
    );
    await Promise.all(acks);
  });
  process.stderr.write(`latency ${rate}/s receive: ${JSON.stringify(receive)}\n`);
  out.receive = receive;
  if (!STYLES.has("pull")) return out;
  const pull = await scenario(s, "pull", rate, async (topic, record, stopped) => {
    await Promise.all(
      Array.from({ length: QUEUES }, async (_, q) => {
        let offset = 0;
        while (!stopped()) {
          const r = await consumer.json<{ messages: { body: string }[]; nextOffset: number }>(
            "GET",
            `/v1/topics/${topic}/queues/${q}/messages?offset=${offset}&max=32&waitMs=${WAIT_MS}`,
          );
          offset = r.nextOffset;
          record(r.messages.map((m) => m.body));
        }
      }),
    );
  });
  process.stderr.write(`latency ${rate}/s pull: ${JSON.stringify(pull)}\n`);
  out.pull = pull;
  return out;
}

export async function runLatency(): Promise<Record<string, unknown>> {
  const s = await startBenchServer();
  const consumer = new HttpClient(s.server.url, { maxSockets: 32 });
  try {
    const runs = [];
    for (const rate of RATES) runs.push(await atRate(s, consumer, rate));
    // The target is stated at 1 000 msg/s; the highest rate run stands for it otherwise.
    const top = runs.find((r) => r.ratePerSec === 1000) ?? runs.at(-1);
    return {
      ratesPerSec: RATES,
      seconds: SECONDS,
      queues: QUEUES,
      receivers: RECEIVERS,
      runs,
      targets: {
        e2eP99Ms: {
          target: 5,
          ratePerSec: top?.ratePerSec,
          receive: top?.receive?.p99Ms,
          pull: top?.pull?.p99Ms,
          session: top?.session?.p99Ms,
        },
      },
    };
  } finally {
    consumer.close();
    await s.close();
  }
}

if (import.meta.main) {
  emit("latency", await runLatency());
}
